"""Shared by the engine tests: the engines, one synthetic web on S3, one local reference run.

The engines come from ``deploy/engines/fetch.sh``. Where they cannot be
fetched the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest
from engine_cluster import HOST, Engines, GcsEmulator
from engine_runs import ENGINE_PAIRS, SEED, SLOW_S, JobInput, RunFolder, engine_job_args, read_run

from paircurate.pipeline.run import run
from paircurate.synthweb import SyntheticWeb, SyntheticWebServer, WebMix, write_manifest

TESTS = Path(__file__).resolve().parents[1]


def _pipeline_fixtures():
    """tests/pipeline/conftest.py under a name of its own: its wheel, worker env and S3."""
    spec = importlib.util.spec_from_file_location(
        "pipeline_fixtures", TESTS / "pipeline" / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_shared = _pipeline_fixtures()
wheel, pool_env, s3 = _shared.wheel, _shared.pool_env, _shared.s3


@pytest.fixture(scope="session")
def engines() -> Engines:
    """Fetched and built once per machine; a failure fails the tests under CI=true."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    try:
        if missing:
            raise RuntimeError(f"not on PATH: {', '.join(missing)}")
        return Engines.fetch()
    except Exception as error:  # noqa: BLE001 - reported below, with the cause
        message = f"Flink, Spark or Beam's job servers could not be fetched: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def boot(pool_env) -> Path:
    """paircurate-boot from the wheel's install (pip --target puts scripts beside the packages)."""
    found = sorted(pool_env.glob("**/bin/paircurate-boot"))
    assert found, f"no paircurate-boot in {pool_env}"
    return found[0]


@pytest.fixture(scope="session")
def engine_web() -> SyntheticWeb:
    return SyntheticWeb(ENGINE_PAIRS, seed=SEED, mix=WebMix())


@pytest.fixture(scope="session")
def engine_server(engine_web):
    with SyntheticWebServer(engine_web, slow_seconds=SLOW_S) as served:
        yield served


def put_input(store, server: SyntheticWebServer, folder: Path) -> JobInput:
    """The web's input list and a takedown list of two of its URLs, on ``store``."""
    local = write_manifest(server.web, server.base_url, str(folder / "pairs.parquet"))
    store.put("engines/input/pairs.parquet", Path(local).read_bytes())
    taken_down = (server.url(3), server.url(7))
    store.put("engines/input/takedown.csv", ("url\n" + "\n".join(taken_down) + "\n").encode())
    return JobInput(
        store.url("engines/input/pairs.parquet"), store.url("engines/input/takedown.csv"),
        taken_down,
    )  # fmt: skip


@pytest.fixture(scope="session")
def engine_input(s3, engine_server, tmp_path_factory) -> JobInput:
    return put_input(s3, engine_server, tmp_path_factory.mktemp("engine-input"))


@pytest.fixture(scope="session")
def gcs(engines, tmp_path_factory):
    with GcsEmulator(engines, tmp_path_factory.mktemp("gcs")) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def gcs_input(gcs, engine_server, tmp_path_factory) -> JobInput:
    return put_input(gcs, engine_server, tmp_path_factory.mktemp("gcs-input"))


@pytest.fixture(scope="session")
def reference(s3, engine_input) -> RunFolder:
    """The same job on the local runner: what every engine must write."""
    prefix = "engines/local"
    run(engine_job_args(engine_input, s3.url(prefix), s3))
    return read_run(s3, prefix)


@pytest.fixture
def launcher_env(monkeypatch):
    """The launcher's environment, as on a machine that only submits.

    No AWS variables: a job server the runner starts, and the workers it
    starts, inherit this environment, and must get the store from the options.
    """
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SPARK_LOCAL_IP", HOST)
