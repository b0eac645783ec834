"""Runner choice: a worker per core on portable runners; local paths only where workers see them."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.runners.runner import create_runner

from paircurate.pipeline.run import make_pipeline, parse_args, run
from paircurate.pipeline.runners import check_paths_reach_workers, writes_executable
from paircurate.schemas.config import ConfigError

DATAFLOW = [
    "--runner=DataflowRunner", "--project=p", "--region=us-central1",
    "--temp_location=gs://b/tmp",
]  # fmt: skip


def _parallelism(*beam_args: str):
    return make_pipeline(list(beam_args)).options.get_all_options()["sdk_worker_parallelism"]


@pytest.mark.parametrize("runner", ["FlinkRunner", "SparkRunner", "PortableRunner"])
def test_portable_runners_ask_for_a_worker_per_core(runner):
    assert _parallelism(f"--runner={runner}", "--job_endpoint=localhost:8099") == 0


def test_a_given_worker_parallelism_is_kept():
    assert _parallelism("--runner=FlinkRunner", "--sdk_worker_parallelism=3") == "3"
    assert _parallelism("--runner=SparkRunner", "--sdk_worker_parallelism", "1") == "1"


def test_other_runners_keep_beams_default():
    assert _parallelism() == 1
    assert _parallelism("--runner=DirectRunner") == 1


def _check(*beam_args: str, output: str = "/data/out", extra: tuple[str, ...] = ()) -> None:
    """The launcher's path check, for the runner and options these flags give."""
    config, rest = parse_args(
        ["--input", "gs://b/in.parquet", "--output", output, *extra, *beam_args]
    )
    check_paths_reach_workers(config, *_runner_and_options(rest))


def _runner_and_options(beam_args: list[str]):
    """As make_pipeline chooses them (a Dataflow pipeline would look for credentials here)."""
    options = PipelineOptions(beam_args)
    name = options.view_as(StandardOptions).runner
    return (create_runner(name) if name else FnApiRunner()), options


@pytest.mark.parametrize(
    ("beam_args", "reason"),
    [
        (DATAFLOW, "DataflowRunner runs the workers on Compute Engine VMs"),
        (["--runner=FlinkRunner", "--flink_master=[local]"], "in Docker containers"),
        (["--runner=SparkRunner", "--environment_type=DOCKER"], "in Docker containers"),
        (["--runner=FlinkRunner", "--flink_master=flink-jm:8081", "--environment_type=EXTERNAL",
          "--environment_config=localhost:50000"], "an engine that may run its workers on other"),
        (["--runner=SparkRunner", "--spark_master_url=spark://master:7077",
          "--environment_type=PROCESS"], "an engine that may run its workers on other"),
        (["--runner=PortableRunner", "--job_endpoint=localhost:8099",
          "--environment_type=EXTERNAL", "--environment_config=localhost:50000"],
         "an engine that may run its workers on other"),
        (["--runner=FlinkRunner", "--environment_type=EXTERNAL",
          "--environment_config=10.0.0.7:50000"], "the worker pool at 10.0.0.7:50000"),
    ],
)  # fmt: skip
def test_a_local_output_with_remote_workers_stops_before_submission(beam_args, reason):
    with pytest.raises(ConfigError) as error:
        _check(*beam_args)
    assert reason in str(error.value)
    assert str(error.value).startswith("/data/out: a local path")
    assert "--allow-local-paths" in str(error.value)


@pytest.mark.parametrize(
    "beam_args",
    [
        [],
        ["--runner=DirectRunner"],
        ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        ["--runner=PortableRunner", "--job_endpoint=localhost:8099", "--environment_type=LOOPBACK"],
        ["--runner=FlinkRunner", "--environment_type=EXTERNAL",
         "--environment_config=localhost:50000"],
        ["--runner=SparkRunner", "--environment_type=PROCESS"],
        ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=EXTERNAL",
         "--environment_config=127.0.0.1:50000"],
    ],
)  # fmt: skip
def test_local_paths_pass_where_the_workers_share_this_disk(beam_args):
    _check(*beam_args)


def test_object_store_paths_pass_with_any_runner():
    _check(*DATAFLOW, output="gs://b/out")
    _check("--runner=FlinkRunner", output="s3://b/out")


def test_a_local_input_counts_too():
    config, rest = parse_args(["--input", "lists/in.parquet", "--output", "gs://b/out", *DATAFLOW])
    with pytest.raises(ConfigError, match="^lists/in.parquet: a local path"):
        check_paths_reach_workers(config, *_runner_and_options(rest))


def test_allow_local_paths_accepts_them():
    _check(*DATAFLOW, extra=("--allow-local-paths",))


def test_the_launcher_refuses_before_reading_anything(tmp_path):
    missing = tmp_path / "no-such-input.parquet"
    with pytest.raises(
        ConfigError, match="a local path, but FlinkRunner runs the workers in Docker"
    ):
        run(["--input", str(missing), "--output", str(tmp_path / "out"), "--runner=FlinkRunner"])
    assert not (tmp_path / "out").exists()


def test_a_job_written_as_a_jar_is_not_waited_for():
    options = PipelineOptions(["--runner=SparkRunner", "--output_executable_path=job.jar"])
    assert writes_executable(options) == "job.jar"
    assert writes_executable(PipelineOptions(["--runner=SparkRunner"])) is None
