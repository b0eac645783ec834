"""The job through Beam's portable runner API: the submission path Spark and Flink use.

Two ways the SDK harness can run: LOOPBACK (in this process), and EXTERNAL, a
worker pool that starts one SDK worker process per request, the way the
container image's ``--worker_pool`` mode does next to a Flink TaskManager or a
Spark executor. The pool's Python has paircurate installed from the wheel
only, and it starts in a folder outside the checkout: what a worker imports is
what a cluster's workers would import.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam
import pytest
from conftest import CHECKOUT, PAIRS, job_args, read_ledger, run_job_on, shard_files

from paircurate.pipeline.run import make_pipeline, parse_args, run_job

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{process.args} did not listen on {port}")


def _serve(command: list, port: int, **popen):
    """Start a gRPC service, wait until it listens, stop it afterwards."""
    service = subprocess.Popen(command, **popen)
    try:
        _wait_for_port(port, service)
        yield f"localhost:{port}"
    finally:
        service.terminate()
        service.wait(timeout=30)


@pytest.fixture(scope="module")
def job_endpoint():
    port = _free_port()
    command = [
        sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
        "--port", str(port),
    ]  # fmt: skip
    yield from _serve(command, port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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


# --- EXTERNAL: a worker pool with paircurate from the wheel, outside the checkout ---


@pytest.fixture(scope="module")
def worker_pool(pool_env, tmp_path_factory):
    """Beam's worker pool, started like the image's --worker_pool mode, in an empty folder.

    The pool starts each SDK worker as ``python -c ...`` from PATH, with that
    folder first on sys.path: the pool's environment comes first on PATH.
    """
    port = _free_port()
    start_in = tmp_path_factory.mktemp("pool-cwd")
    # Nothing from this process's environment but PATH and the like: S3 credentials and
    # endpoints must reach the workers as pipeline options, as on a cluster.
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONPATH" and not key.startswith("AWS_")
    }
    env["PATH"] = f"{pool_env / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(pool_env)
    command = [
        str(pool_env / "bin" / "python"), "-m", "apache_beam.runners.worker.worker_pool_main",
        f"--service_port={port}",
    ]  # fmt: skip
    log = (start_in.parent / "pool.log").open("wb")
    with log:
        yield from _serve(command, port, cwd=start_in, env=env, stdout=log, stderr=log)


def run_with_probe(argv: list[str], probe_dir: Path) -> tuple[dict, dict]:
    """Run the job with one more branch, in the same pipeline, that reports from a worker."""

    def where_am_i(_) -> str:
        """Where this worker runs and where paircurate's job module came from.

        A local function, so it travels by value: the worker cannot import this test.
        """
        import paircurate.pipeline.job

        return json.dumps(
            {
                "pid": os.getpid(),
                "cwd": os.getcwd(),
                "prefix": sys.prefix,
                "module": paircurate.pipeline.job.__file__,
                "sys_path": sys.path,
            }
        )

    config, beam_args = parse_args(argv)
    pipeline = make_pipeline(beam_args)
    _ = (
        pipeline
        | "ProbeStart" >> beam.Create([None])
        | "Probe" >> beam.Map(where_am_i)
        | "ProbeWrite" >> beam.io.WriteToText(str(probe_dir / "probe"), shard_name_template="")
    )
    stats = run_job(config, beam_args, test_pipeline=pipeline)
    return stats, json.loads((probe_dir / "probe").read_text())


@dataclass
class Destination:
    """Where the EXTERNAL job writes, the options that reach it, and how to read it back."""

    output: str
    options: list[str]
    ledger: Callable[[], list[dict]]
    shards: Callable[[], dict[str, bytes]]


@pytest.fixture(params=["local", "s3"])
def destination(request, tmp_path) -> Destination:
    if request.param == "local":
        folder = tmp_path / "external"
        return Destination(
            str(folder),
            [],
            lambda: read_ledger(folder),
            lambda: {p.name: p.read_bytes() for p in shard_files(folder, ".tar")},
        )
    s3 = request.getfixturevalue("s3")
    prefix = f"external-{uuid.uuid4().hex[:8]}"
    return Destination(
        s3.url(prefix), s3.beam_args, lambda: s3.ledger(prefix), lambda: s3.shards(prefix)
    )


def test_external_worker_pool_runs_the_wheel_and_writes_the_same_shards(
    first_run, manifest, job_endpoint, worker_pool, pool_env, destination, tmp_path
):
    output, _ = first_run
    argv = job_args(
        manifest,
        destination.output,
        "--runner=PortableRunner",
        f"--job_endpoint={job_endpoint}",
        "--environment_type=EXTERNAL",
        f"--environment_config={worker_pool}",
        # Beam's job service on localhost runs the workers here, which the
        # launcher cannot tell from a job server that submits to a cluster.
        "--allow-local-paths",
        *destination.options,
    )
    stats, probe = run_with_probe(argv, tmp_path)

    # The DoFns ran in a process of the pool, from the wheel, not from the checkout.
    assert probe["pid"] != os.getpid()
    assert Path(probe["prefix"]).resolve() == pool_env.resolve()
    assert Path(probe["module"]).resolve().is_relative_to(pool_env.resolve())
    assert not Path(probe["cwd"]).is_relative_to(CHECKOUT)
    searched = {Path(entry or probe["cwd"]).resolve() for entry in probe["sys_path"]}
    assert CHECKOUT not in searched

    ledger = destination.ledger()
    assert stats["rows_in"] == PAIRS
    assert sorted(row["row_number"] for row in ledger) == list(range(PAIRS))
    first = {p.name: p.read_bytes() for p in shard_files(output, ".tar")}
    assert first
    assert first == destination.shards()


def image_workdir() -> str:
    """The final WORKDIR of deploy/Dockerfile: where the image's SDK workers start."""
    lines = (CHECKOUT / "deploy" / "Dockerfile").read_text().splitlines()
    return [line.split(None, 1)[1].strip() for line in lines if line.startswith("WORKDIR ")][-1]


IMPORT_JOB = "import paircurate, paircurate.pipeline.job; print(paircurate.__file__)"


def test_a_worker_in_the_images_working_directory_imports_the_wheel(pool_env, tmp_path):
    """The image's check, replayed: ``python -c`` puts the working directory first on sys.path."""
    workdir = tmp_path / image_workdir().lstrip("/")
    workdir.mkdir(parents=True)
    python = pool_env / "bin" / "python"
    found = subprocess.run(
        [python, "-c", IMPORT_JOB], cwd=workdir, capture_output=True, text=True, check=True
    )
    assert Path(found.stdout.strip()).resolve().is_relative_to(pool_env.resolve())


def test_a_paircurate_folder_in_the_working_directory_hides_the_wheel(pool_env, tmp_path):
    """What the image did before: the repository's root paircurate/ copied into its WORKDIR."""
    (tmp_path / "paircurate").mkdir()
    (tmp_path / "paircurate" / "__init__.py").write_text('__version__ = "0.1.0"\n')
    python = pool_env / "bin" / "python"
    found = subprocess.run([python, "-c", IMPORT_JOB], cwd=tmp_path, capture_output=True, text=True)
    assert found.returncode != 0
    assert "No module named 'paircurate.pipeline'" in found.stderr
