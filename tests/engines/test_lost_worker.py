"""A Spark Worker lost while Fetch runs: retried bundles, or a rerun, leave every row once.

The Worker, its executor and the SDK workers it started are killed (SIGKILL)
once some chunks are committed, and a new Worker joins. Spark retries the lost
tasks on it; should the job fail instead, it is run again with the same
output. Either way every row is in the ledger once, no shard holds a sample
twice, the shards are the local runner's, and no chunk committed before the
kill is downloaded again.
"""

from __future__ import annotations

import logging
import re
import tarfile
import threading
import time
from io import BytesIO
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest
from engine_cluster import SparkCluster
from engine_runs import (
    ENGINE_PAIRS,
    WORKER_LOG_LEVEL,
    assert_same_as_reference,
    engine_job_args,
    process_environment,
    read_run,
    spark_args,
)

from paircurate.pipeline.cli import finish_with_report
from paircurate.pipeline.run import run

pytestmark = pytest.mark.slow

REQUEST = re.compile(r'"GET (\S+) HTTP')
MARKER = re.compile(r"/fetch/[^/]+/\d+\.parquet$")
KILL_AFTER_CHUNKS = 1
WAIT_S = 600


class RequestLog(logging.Handler):
    """The synthetic web's requests, as (monotonic time, path), from its debug lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.requests: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = REQUEST.search(record.getMessage())
        if found:
            self.requests.append((time.monotonic(), found.group(1)))


@pytest.fixture
def request_log():
    logger = logging.getLogger("paircurate.synthweb.server")
    handler, level = RequestLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def committed_markers(s3, prefix: str) -> list[str]:
    return [key for key in s3.keys(f"{prefix}/fetch/") if MARKER.search(key)]


def samples_per_shard(shards: dict[str, bytes]) -> dict[str, list[str]]:
    """Shard name -> the sample keys in it (a member's name up to its first dot), with repeats."""
    keys = {}
    for name, data in shards.items():
        with tarfile.open(fileobj=BytesIO(data)) as tar:
            members = [member.name for member in tar.getmembers()]
        assert len(members) == len(set(members)), f"{name} repeats a member"
        keys[name] = sorted({member.split(".", 1)[0] for member in members})
    return keys


class WorkerKiller(threading.Thread):
    """Kills the Worker once a chunk is committed, notes what was committed, starts a new one."""

    def __init__(self, cluster: SparkCluster, markers) -> None:
        super().__init__(daemon=True)
        self.cluster, self.markers = cluster, markers
        self.committed: list[str] = []
        self.killed_at: float | None = None
        self.error: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while len(self.markers()) < KILL_AFTER_CHUNKS:
            if time.monotonic() > deadline:
                self.error = "no chunk was committed"
                return
            time.sleep(0.3)
        self.committed = self.markers()
        self.cluster.kill_worker()
        self.killed_at = time.monotonic()
        self.cluster.start_worker()


def test_a_lost_spark_worker_leaves_every_row_once(
    engines, boot, s3, engine_input, engine_server, reference, launcher_env, request_log,
    tmp_path,
):  # fmt: skip
    prefix = "engines/lost-worker"
    with SparkCluster(engines, tmp_path / "spark") as cluster:
        argv = engine_job_args(
            engine_input, s3.url(prefix), s3, *spark_args(engines, cluster.master_url),
            *process_environment(boot), f"--default_sdk_harness_log_level={WORKER_LOG_LEVEL}",
        )  # fmt: skip
        killer = WorkerKiller(cluster, lambda: committed_markers(s3, prefix))
        killer.start()
        try:
            run(argv)  # in the main thread: Beam's job-server handle sets a signal handler
        except Exception as error:  # noqa: BLE001 - the engine gave up: run the job again
            logging.getLogger(__name__).warning("the job failed (%s); run again", error)
            killer.join(WAIT_S)
            run(argv)
        killer.join(WAIT_S)
        assert killer.killed_at is not None, killer.error or "the Worker was never killed"

    assert finish_with_report(s3.url(prefix)) == 0
    result = read_run(s3, prefix)
    assert sorted(row["row_number"] for row in result.ledger) == list(range(ENGINE_PAIRS))
    in_shards = [key for keys in samples_per_shard(result.shards).values() for key in keys]
    assert len(in_shards) == len(set(in_shards)) == result.stats["kept"]
    assert_same_as_reference(result, reference)

    # The chunks committed before the kill were not downloaded again.
    path_of = {row["uid"]: urlsplit(row["url"]).path for row in result.ledger}
    committed_paths = {
        path_of[row["uid"]] for key in killer.committed for row in marker_rows(s3, key)
    }
    assert committed_paths
    again = [path for at, path in request_log.requests if at > killer.killed_at]
    assert not committed_paths & set(again)


def marker_rows(s3, key: str) -> list[dict]:
    return pq.read_table(BytesIO(s3.get(key)), columns=["uid"]).to_pylist()
