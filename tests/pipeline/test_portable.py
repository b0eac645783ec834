"""The job through Beam's PortableRunner: the submission path Spark and Flink use."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from conftest import PAIRS, read_ledger, run_job_on, shard_files

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"job service exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"job service did not listen on {port}")


@pytest.fixture(scope="module")
def job_endpoint():
    port = _free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
         "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port, service)
        yield f"localhost:{port}"
    finally:
        service.terminate()
        service.wait(timeout=30)


def test_portable_runner_writes_the_same_shards(first_run, manifest, job_endpoint, tmp_path):
    output, _ = first_run
    portable = tmp_path / "portable"
    stats = run_job_on(
        manifest,
        portable,
        "--runner=PortableRunner",
        f"--job_endpoint={job_endpoint}",
        "--environment_type=LOOPBACK",
    )
    assert stats["rows_in"] == PAIRS == len(read_ledger(portable))
    first = {p.name: p.read_bytes() for p in shard_files(output, ".tar")}
    assert first == {p.name: p.read_bytes() for p in shard_files(portable, ".tar")}
