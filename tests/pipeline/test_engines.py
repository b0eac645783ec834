"""Flink and Spark runs: defaults set and mistakes caught before anything is submitted."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from apache_beam.options.pipeline_options import (
    JobServerOptions,
    PipelineOptions,
    PortableOptions,
)
from apache_beam.runners.portability.flink_runner import FlinkRunner
from apache_beam.runners.portability.spark_runner import SparkRunner

from paircurate.pipeline import engines
from paircurate.pipeline.run import make_pipeline, run
from paircurate.schemas.config import ConfigError


def _options(*beam_args: str) -> PipelineOptions:
    return make_pipeline(list(beam_args)).options


@pytest.mark.parametrize(
    ("beam_args", "value"),
    [
        (["--flink_version=1.20"], "1.20"),
        (["--flink_version", "1.19", "--x"], "1.19"),
        (["--flink_version=1.19", "--flink_version=2.0"], "2.0"),
        (["--flink_versions=1.19"], None),
        (["--flink_version"], None),
    ],
)
def test_flag_value(beam_args, value):
    assert engines.flag_value(beam_args, "--flink_version") == value


def test_a_flink_version_beam_has_no_job_server_for_is_refused_before_submission():
    with pytest.raises(ConfigError) as error:
        run(["--input", "in.parquet", "--output", "out", "--runner=FlinkRunner",
             "--flink_version=1.18"])  # fmt: skip
    assert str(error.value).startswith("--flink_version=1.18: apache-beam")
    assert "1.19, 1.20" in str(error.value)


@pytest.mark.parametrize("runner", ["FlinkRunner", "SparkRunner"])
def test_a_job_server_from_a_jar_gets_java_17_flags_and_workers_are_kept(runner):
    options = _options(f"--runner={runner}")
    flags = options.view_as(JobServerOptions).job_server_jvm_properties
    assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in flags
    assert "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED" in flags
    assert options.view_as(PortableOptions).environment_cache_millis == 600_000


def test_given_flags_are_kept_and_not_repeated():
    options = _options(
        "--runner=FlinkRunner", "--environment_cache_millis=5",
        "--job_server_jvm_properties=-Xmx2g",
        "--job_server_jvm_properties=--add-opens=java.base/java.lang=ALL-UNNAMED",
    )  # fmt: skip
    flags = options.view_as(JobServerOptions).job_server_jvm_properties
    assert flags[:2] == ["-Xmx2g", "--add-opens=java.base/java.lang=ALL-UNNAMED"]
    assert flags.count("--add-opens=java.base/java.lang=ALL-UNNAMED") == 1
    assert options.view_as(PortableOptions).environment_cache_millis == "5"


@pytest.mark.parametrize(
    "beam_args",
    [
        ["--runner=FlinkRunner", "--job_endpoint=localhost:8099"],
        ["--runner=PortableRunner", "--job_endpoint=localhost:8099"],
        ["--runner=SparkRunner", "--spark_submit_uber_jar", "--spark_rest_url=http://m:6066"],
        ["--runner=FlinkRunner", "--flink_master=m:8081", "--flink_submit_uber_jar"],
    ],
)
def test_no_jvm_flags_where_the_launcher_starts_no_job_server(beam_args):
    options = _options(*beam_args)
    assert not options.view_as(JobServerOptions).job_server_jvm_properties
    assert options.view_as(PortableOptions).environment_cache_millis == 600_000


def test_local_runs_are_left_alone():
    assert _options().view_as(PortableOptions).environment_cache_millis == 0


def test_no_java_is_a_clear_error():
    options = PipelineOptions(["--job_server_java_launcher=/nonexistent/java"])
    with pytest.raises(ConfigError) as error:
        engines.check_engine(FlinkRunner(), options)
    assert "no Java found ('/nonexistent/java' is not on PATH)" in str(error.value)
    assert "--job_endpoint" in str(error.value)


def test_java_8_is_a_clear_error(tmp_path):
    java = tmp_path / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"1.8.0_292\"' >&2\n")
    java.chmod(0o755)
    options = PipelineOptions([f"--job_server_java_launcher={java}"])
    with pytest.raises(ConfigError, match="is Java 8. SparkRunner starts Beam's job server"):
        engines.check_engine(SparkRunner(), options)


def test_java_17_passes(tmp_path):
    java = tmp_path / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"17.0.15\" 2025-04-15' >&2\n")
    java.chmod(0o755)
    assert engines.java_major_version(str(java)) == 17
    engines.check_java(PipelineOptions([f"--job_server_java_launcher={java}"]), "FlinkRunner")


@pytest.fixture
def flink_master():
    """A stand-in for a Flink 1.19.3 JobManager's REST API (only /config)."""

    class Config(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's name
            body = json.dumps({"flink-version": "1.19.3"}).encode()
            self.send_response(200 if self.path == "/config" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Config)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_flink_version_that_is_not_the_clusters_is_refused(flink_master):
    options = PipelineOptions([f"--flink_master={flink_master}", "--flink_version=1.20"])
    with pytest.raises(ConfigError) as error:
        engines.check_flink_version(options)
    assert "--flink_version=1.20, but the Flink cluster at http://" in str(error.value)
    assert "runs Flink 1.19.3: pass --flink_version=1.19" in str(error.value)


def test_the_clusters_flink_version_passes(flink_master):
    options = PipelineOptions([f"--flink_master={flink_master}", "--flink_version=1.19"])
    engines.check_flink_version(options)


def test_an_embedded_flink_is_not_asked():
    engines.check_flink_version(PipelineOptions(["--flink_master=[local]", "--flink_version=2.2"]))


@pytest.mark.parametrize(
    ("runner", "beam_args", "says"),
    [
        (FlinkRunner, ["--flink_master=[local]"], "Flink runs inside the job server"),
        (FlinkRunner, ["--flink_master=jm:8081"], "web UI at http://jm:8081"),
        (SparkRunner, ["--spark_master_url=local[2]"], "Spark runs inside the job server"),
        (SparkRunner, ["--spark_master_url=spark://m:7077"], "its Worker's work/ folder"),
    ],
)
def test_the_log_says_where_the_engine_logs(runner, beam_args, says, caplog):
    with caplog.at_level(logging.INFO, logger="paircurate.pipeline.engines"):
        engines.log_locations(runner(), PipelineOptions(beam_args))
    assert says in caplog.text


@pytest.mark.parametrize(("level", "instead"), [("WARNING", "use WARN"), ("CRITICAL", "use ERROR")])
def test_a_python_log_level_the_java_job_server_cannot_read_is_refused(level, instead):
    options = PipelineOptions(
        ["--job_endpoint=localhost:8099", f"--default_sdk_harness_log_level={level}"]
    )
    with pytest.raises(ConfigError) as error:
        engines.check_engine(SparkRunner(), options)
    assert str(error.value).startswith(f"--default_sdk_harness_log_level={level}: Beam's Java")
    assert instead in str(error.value)


@pytest.mark.parametrize("level", ["WARN", "info", None])
def test_log_levels_both_sdks_read_pass(level):
    given = [f"--default_sdk_harness_log_level={level}"] if level else []
    engines.check_engine(FlinkRunner(), PipelineOptions(["--job_endpoint=localhost:8099", *given]))
