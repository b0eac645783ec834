"""The whole job on Flink and Spark, as their users run it, against the local runner's output.

Each configuration reads its input from the S3 emulator and writes its run
there; its workers are paircurate's wheel, started by paircurate-boot
(PROCESS, or EXTERNAL through a worker pool), with nothing of the job in
their environment: the S3 endpoint, the credentials and the log level reach
them as provisioned pipeline options. Every run must equal the local
runner's: the same decision for every row, the same shards byte for byte.
"""

from __future__ import annotations

import json

import pytest
from engine_cluster import FlinkCluster, SparkCluster, clean_environment, worker_pool
from engine_runs import (
    WORKER_LOG_LEVEL,
    assert_same_as_reference,
    assert_worker_from_the_wheel,
    engine_job_args,
    external_environment,
    flink_args,
    process_environment,
    read_run,
    run_engine,
    run_with_probe,
    spark_args,
)

from paircurate.pipeline import cli

pytestmark = pytest.mark.slow


def test_reference_run_is_the_whole_job(reference):
    reasons = {row["reason"] for row in reference.ledger}
    assert {"clip_below_threshold", "excluded", "near_duplicate"} <= reasons
    assert reference.shards


def test_flink_embedded(
    engines, boot, pool_env, s3, engine_input, reference, launcher_env, tmp_path
):
    result = run_engine(
        "flink-embedded", flink_args(engines, "[local]"), process_environment(boot),
        s3, engine_input, tmp_path,
    )  # fmt: skip
    assert_worker_from_the_wheel(tmp_path / "probe", pool_env, s3)
    assert_same_as_reference(result, reference)


def test_flink_embedded_on_gcs(engines, boot, gcs, gcs_input, reference, launcher_env, tmp_path):
    """gs:// in and out, through Beam's GCS client; the workers are pointed at the emulator."""
    command = {"command": str(boot), "env": {"STORAGE_EMULATOR_HOST": gcs.endpoint}}
    environment = ["--environment_type=PROCESS", f"--environment_config={json.dumps(command)}"]
    result = run_engine(
        "flink-embedded-gcs", flink_args(engines, "[local]"), environment, gcs, gcs_input, tmp_path
    )
    assert_same_as_reference(result, reference)


@pytest.fixture(scope="module")
def flink_cluster(engines, tmp_path_factory):
    with FlinkCluster(engines, tmp_path_factory.mktemp("flink")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def pool(pool_env, boot, tmp_path_factory):
    with worker_pool(pool_env, boot, tmp_path_factory.mktemp("pool")) as address:
        yield address


def test_flink_cluster(
    engines, flink_cluster, pool, pool_env, s3, engine_input, reference, launcher_env, tmp_path
):
    result = run_engine(
        "flink-cluster", flink_args(engines, flink_cluster.master), external_environment(pool),
        s3, engine_input, tmp_path,
    )  # fmt: skip
    assert_worker_from_the_wheel(tmp_path / "probe", pool_env, s3)
    assert_same_as_reference(result, reference)


def test_spark_local(engines, boot, pool_env, s3, engine_input, reference, launcher_env, tmp_path):
    result = run_engine(
        "spark-local", spark_args(engines, "local[2]"), process_environment(boot),
        s3, engine_input, tmp_path,
    )  # fmt: skip
    assert_worker_from_the_wheel(tmp_path / "probe", pool_env, s3)
    assert_same_as_reference(result, reference)


@pytest.fixture(scope="module")
def spark_cluster(engines, tmp_path_factory):
    with SparkCluster(engines, tmp_path_factory.mktemp("spark")) as cluster:
        yield cluster


def test_spark_cluster(
    engines, spark_cluster, pool, pool_env, s3, engine_input, reference, launcher_env, tmp_path
):
    result = run_engine(
        "spark-cluster", spark_args(engines, spark_cluster.master_url),
        external_environment(pool), s3, engine_input, tmp_path,
    )  # fmt: skip
    assert_worker_from_the_wheel(tmp_path / "probe", pool_env, s3)
    assert_same_as_reference(result, reference)


def test_spark_job_jar_submitted_with_spark_submit(
    engines, spark_cluster, boot, pool_env, s3, engine_input, reference, launcher_env, tmp_path
):
    """The route of YARN, Dataproc and Kubernetes users: write the job as a jar, spark-submit it."""
    prefix, jar = "engines/spark-submit", tmp_path / "paircurate-job.jar"
    argv = engine_job_args(
        engine_input, s3.url(prefix), s3, *spark_args(engines, spark_cluster.master_url),
        f"--output_executable_path={jar}", *process_environment(boot),
        f"--default_sdk_harness_log_level={WORKER_LOG_LEVEL}",
    )  # fmt: skip
    assert run_with_probe(argv, tmp_path / "probe") is None  # only written, not run
    assert jar.stat().st_size > 0
    assert not s3.keys(prefix + "/shards/")

    done = spark_cluster.submit(jar, tmp_path / "spark-submit.log", clean_environment())
    assert done.returncode == 0, (tmp_path / "spark-submit.log").read_text()[-5000:]
    assert cli.main(["report", s3.url(prefix), *s3.beam_args]) == 0  # no launcher waited
    assert_worker_from_the_wheel(tmp_path / "probe", pool_env, s3)
    assert_same_as_reference(read_run(s3, prefix), reference)
