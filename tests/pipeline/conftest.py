"""Shared fixtures of the pipeline tests: one synthetic web served for the whole session."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import tomllib

from paircurate.pipeline.run import run
from paircurate.synthweb import SyntheticWeb, SyntheticWebServer, WebMix, write_manifest

CHECKOUT = Path(__file__).resolve().parents[2]
PAIRS = 160
# The job's read timeout is well under the server's stall, so "slow" rows time
# out, and well over a busy machine's worst latency, so nothing else does.
TIMEOUT_S = 5
SLOW_S = 12


@pytest.fixture(scope="session")
def web() -> SyntheticWeb:
    return SyntheticWeb(PAIRS, seed=11, mix=WebMix())


@pytest.fixture(scope="session")
def server(web):
    with SyntheticWebServer(web, slow_seconds=SLOW_S) as served:
        yield served


@pytest.fixture(scope="session")
def manifest(web, server, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("input")
    return write_manifest(web, server.base_url, str(folder / "manifest.parquet"))


def job_args(
    manifest: str, output: Path | str, *extra: str, keep: str = "truth_label,truth_duplicate_of"
) -> list[str]:
    return [
        "--input", str(manifest),
        "--output", str(output),
        "--allow-private-networks",
        "--timeout", str(TIMEOUT_S),
        "--min-image-size", "64",
        "--max-aspect-ratio", "4",
        "--shard-size", "48",
        "--keep-cols", keep,
        "--clip-model", "paircurate-ref",
        *extra,
    ]  # fmt: skip


def run_job_on(manifest: str, output: Path | str, *extra: str, **kwargs: str) -> dict:
    return run(job_args(manifest, output, *extra, **kwargs))


@pytest.fixture(scope="session")
def first_run(manifest, tmp_path_factory):
    """One job over the session's web: (output folder, stats)."""
    output = tmp_path_factory.mktemp("run") / "out"
    return output, run_job_on(manifest, output)


def read_ledger(output: Path | str) -> list[dict]:
    return pq.read_table(os.path.join(output, "ledger")).to_pylist()


def shard_files(output: Path | str, suffix: str) -> list[Path]:
    return sorted(Path(output, "shards").glob(f"*{suffix}"))


# --- a Python with paircurate from the wheel only, as a cluster's workers have it ---


def _shared_site_packages() -> list[str]:
    """This interpreter's third-party folders (site-packages), also where .venv is in the checkout.

    A folder named on a line of a .pth file is added to sys.path without its own
    .pth files being read, so the editable install's finder stays inactive there
    and the checkout's sources are not importable.
    """
    return [entry for entry in sys.path if entry.endswith(("site-packages", "dist-packages"))]


def wheel_sources() -> list[str]:
    """What the wheel is built from: pyproject.toml, the README and the folders it maps."""
    project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
    folders = project["tool"]["setuptools"]["package-dir"].values()
    return ["pyproject.toml", "README.md", *sorted(set(folders))]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """paircurate's wheel, built from a copy of the sources (the checkout keeps no build/)."""
    source = tmp_path_factory.mktemp("wheel-source")
    for name in wheel_sources():
        copy = shutil.copytree if (CHECKOUT / name).is_dir() else shutil.copy2
        copy(CHECKOUT / name, source / name)
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(folder), "."],
        cwd=source,
        check=True,
    )
    (built,) = folder.glob("paircurate-*.whl")
    return built


@pytest.fixture(scope="session")
def pool_env(wheel, tmp_path_factory) -> Path:
    """A virtual environment holding paircurate from the wheel, sharing our third-party packages.

    Creating it with --without-pip and sharing the packages avoids installing
    torch and Beam again; paircurate itself comes only from the wheel.
    """
    env_dir = tmp_path_factory.mktemp("pool-env")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
    ).strip()
    Path(purelib, "shared_packages.pth").write_text("\n".join(_shared_site_packages()) + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", purelib, str(wheel)],
        cwd=env_dir,
        check=True,
    )  # fmt: skip
    return env_dir


@dataclass
class S3Emulator:
    """moto's S3 server on 127.0.0.1 with one bucket; ``beam_args`` point a job at it."""

    endpoint: str
    bucket: str
    client: Any

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @property
    def beam_args(self) -> list[str]:
        """Beam's own S3 options, as a user passes them to `paircurate run`."""
        return [
            f"--s3_endpoint_url={self.endpoint}",
            f"--s3_access_key_id={S3_KEY}",
            f"--s3_secret_access_key={S3_SECRET}",
            f"--s3_region_name={S3_REGION}",
        ]

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def ledger(self, prefix: str) -> list[dict]:
        """The rows of the ledger of the run folder at ``prefix``."""
        keys = [key for key in self.keys(f"{prefix}/ledger/") if key.endswith(".parquet")]
        return [row for key in keys for row in pq.read_table(io.BytesIO(self.get(key))).to_pylist()]

    def shards(self, prefix: str) -> dict[str, bytes]:
        """File name -> bytes of the run's shard tars (not their Parquet, which holds timings)."""
        keys = [key for key in self.keys(f"{prefix}/shards/") if key.endswith(".tar")]
        return {key.rsplit("/", 1)[1]: self.get(key) for key in keys}


S3_KEY, S3_SECRET, S3_REGION = "paircurate-test", "paircurate-test-secret", "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Emulator]:
    """An S3 emulator for the session, with the standard AWS variables set for its clients.

    Tests that write to it use a prefix of their own.
    """
    boto3 = pytest.importorskip("boto3")
    server_module = pytest.importorskip("moto.server", reason="needs moto[server] (dev extra)")
    server = server_module.ThreadedMotoServer(
        ip_address="127.0.0.1", port=free_port(), verbose=False
    )
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_DEFAULT_REGION": S3_REGION,
        "AWS_ENDPOINT_URL_S3": endpoint,
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name=S3_REGION)
        client.create_bucket(Bucket="paircurate")
        yield S3Emulator(endpoint, "paircurate", client)
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
