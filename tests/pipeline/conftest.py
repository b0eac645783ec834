"""Shared fixtures of the pipeline tests: one synthetic web served for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from paircurate.pipeline.run import run
from paircurate.synthweb import SyntheticWeb, SyntheticWebServer, WebMix, write_manifest

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
