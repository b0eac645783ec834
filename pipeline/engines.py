"""What Flink and Spark runs need from the launcher, checked and set before submission.

``FlinkRunner`` and ``SparkRunner`` start Beam's Java job server from a jar,
which translates the graph for the engine and starts the SDK workers. Here:

- a ``--flink_version`` Beam has no job server for, or one that is not the
  version of the Flink cluster at ``--flink_master``, a missing or too old
  Java, and a worker log level the Java job server cannot parse (Python's
  ``WARNING``), stop the run with a message before anything is submitted;
- the job server gets the JVM flags Flink and Spark need on Java 17 and
  newer (``--add-opens``; Beam's launcher passes none);
- SDK workers outlive a task (``--environment_cache_millis``): without it the
  job server stops a stage's workers when its tasks end and starts new ones
  for the next stage, each importing torch and loading the model again;
- the log says where each engine writes its logs.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    JobServerOptions,
    PipelineOptions,
    PortableOptions,
    SparkRunnerOptions,
    WorkerOptions,
)
from apache_beam.runners.portability.flink_runner import MAGIC_HOST_NAMES, FlinkRunner
from apache_beam.runners.portability.spark_runner import SparkRunner

from paircurate.pipeline.runners import is_portable
from paircurate.schemas.config import ConfigError

log = logging.getLogger(__name__)

FLINK_VERSION_FLAG = "--flink_version"
CACHE_FLAG = "--environment_cache_millis"
JVM_FLAG = "--job_server_jvm_properties"
# Long enough to span the gap between two stages' tasks; an idle worker then ends.
WORKER_CACHE_MILLIS = 10 * 60 * 1000
MIN_JAVA = 11
# What Flink's own scripts and Spark's launcher open to their code on Java 17 (the union).
JAVA17_OPENS = tuple(
    f"--add-opens=java.base/{package}=ALL-UNNAMED"
    for package in (
        "java.io", "java.lang", "java.lang.invoke", "java.lang.reflect", "java.net",
        "java.nio", "java.text", "java.time", "java.util", "java.util.concurrent",
        "java.util.concurrent.atomic", "java.util.concurrent.locks", "sun.nio.ch",
        "sun.nio.cs", "sun.security.action", "sun.util.calendar",
    )
)  # fmt: skip
FLINK_CONFIG_TIMEOUT_S = 10
LOG_LEVEL_FLAG = "--default_sdk_harness_log_level"
# The names Beam's Java SDK parses that level from; Python's SDK workers read each as well.
JAVA_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF")
PYTHON_TO_JAVA_LEVEL = {"WARNING": "WARN", "CRITICAL": "ERROR", "FATAL": "ERROR"}


def flag_value(beam_args: Sequence[str], flag: str) -> str | None:
    """The value of ``--flag=value`` or ``--flag value`` (the last one given), or None."""
    value = None
    for index, arg in enumerate(beam_args):
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        elif arg == flag and index + 1 < len(beam_args):
            value = beam_args[index + 1]
    return value


def check_engine_flags(beam_args: Sequence[str]) -> None:
    """Flags Beam would reject with a bare usage message, explained first."""
    version = flag_value(beam_args, FLINK_VERSION_FLAG)
    published = FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
    if version is not None and version not in published:
        raise ConfigError(
            f"{FLINK_VERSION_FLAG}={version}: apache-beam {beam.__version__} has Flink job "
            f"servers for Flink {', '.join(published)} only; use your cluster's version if it "
            "is one of them, or a Beam release that supports it."
        )


def starts_java_job_server(runner: beam.runners.PipelineRunner, options: PipelineOptions) -> bool:
    """Whether the launcher starts Beam's Java job server itself (from a jar)."""
    if not isinstance(runner, (FlinkRunner, SparkRunner)):
        return False
    if options.view_as(PortableOptions).job_endpoint:
        return False
    if isinstance(runner, FlinkRunner):
        flink = options.view_as(FlinkRunnerOptions)
        return not (flink.flink_submit_uber_jar and flink.flink_master not in MAGIC_HOST_NAMES)
    return not options.view_as(SparkRunnerOptions).spark_submit_uber_jar


def apply_engine_defaults(pipeline: beam.Pipeline, beam_args: Sequence[str]) -> None:
    """Keep SDK workers across tasks, and give a Java job server its JVM flags."""
    options = pipeline.options
    if is_portable(pipeline.runner) and flag_value(beam_args, CACHE_FLAG) is None:
        options.view_as(PortableOptions).environment_cache_millis = WORKER_CACHE_MILLIS
    if starts_java_job_server(pipeline.runner, options):
        server = options.view_as(JobServerOptions)
        given = list(server.job_server_jvm_properties or [])
        server.job_server_jvm_properties = given + [o for o in JAVA17_OPENS if o not in given]


def java_major_version(launcher: str) -> int | None:
    """The major version ``launcher -version`` reports (8 for 1.8), or None if unreadable."""
    try:
        shown = subprocess.run(
            [launcher, "-version"], capture_output=True, text=True, timeout=60
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def check_log_level(options: PipelineOptions) -> None:
    """A worker log level Beam's Java job server can read (it fails the job on others)."""
    level = options.view_as(WorkerOptions).default_sdk_harness_log_level
    if level is None or str(level).upper() in JAVA_LOG_LEVELS:
        return
    instead = PYTHON_TO_JAVA_LEVEL.get(str(level).upper(), "one of them")
    raise ConfigError(
        f"{LOG_LEVEL_FLAG}={level}: Beam's Java job server reads only "
        f"{', '.join(JAVA_LOG_LEVELS)} and fails the job otherwise; use {instead} "
        "(Python's SDK workers read these names too)."
    )


def check_java(options: PipelineOptions, runner_name: str) -> None:
    launcher = options.view_as(JobServerOptions).job_server_java_launcher or "java"
    found = shutil.which(launcher)
    hint = (
        f"{runner_name} starts Beam's job server, a Java program: install Java {MIN_JAVA} or "
        "newer (17 runs Flink and Spark alike), put it on PATH or pass "
        "--job_server_java_launcher=/path/to/java; or start a job server yourself and pass "
        "--job_endpoint=HOST:PORT."
    )
    if found is None:
        raise ConfigError(f"no Java found ({launcher!r} is not on PATH). {hint}")
    major = java_major_version(found)
    if major is not None and major < MIN_JAVA:
        raise ConfigError(f"{found} is Java {major}. {hint}")


def flink_cluster_version(master: str) -> str | None:
    """The version a Flink cluster's REST API reports at /config, or None if it cannot say."""
    url = master.rstrip("/") + "/config"
    try:
        with urllib.request.urlopen(url, timeout=FLINK_CONFIG_TIMEOUT_S) as response:
            return str(json.load(response).get("flink-version") or "") or None
    except (OSError, ValueError) as error:
        log.warning("could not ask the Flink master for its version at %s: %s", url, error)
        return None


def check_flink_version(options: PipelineOptions) -> None:
    """The job server's Flink (``--flink_version``) must be the cluster's, minor for minor."""
    flink = options.view_as(FlinkRunnerOptions)
    master = FlinkRunner.add_http_scheme(flink.flink_master)
    if master in MAGIC_HOST_NAMES:
        return
    cluster = flink_cluster_version(master)
    if cluster and ".".join(cluster.split(".")[:2]) != flink.flink_version:
        raise ConfigError(
            f"{FLINK_VERSION_FLAG}={flink.flink_version}, but the Flink cluster at {master} runs "
            f"Flink {cluster}: pass {FLINK_VERSION_FLAG}={'.'.join(cluster.split('.')[:2])} "
            "(and a job server jar built for it), or the job fails after submission."
        )


def log_locations(runner: beam.runners.PipelineRunner, options: PipelineOptions) -> None:
    """Say where the engine's and the SDK workers' logs go."""
    if isinstance(runner, FlinkRunner):
        master = options.view_as(FlinkRunnerOptions).flink_master
        if master in MAGIC_HOST_NAMES:
            where = "Flink runs inside the job server: its log is the job server's output"
        else:
            where = (
                f"Flink's logs are the JobManager's and TaskManagers' log folders (also in the "
                f"web UI at {FlinkRunner.add_http_scheme(master)})"
            )
    elif isinstance(runner, SparkRunner):
        master = options.view_as(SparkRunnerOptions).spark_master_url
        if master.startswith("local"):
            where = "Spark runs inside the job server: its log is the job server's output"
        else:
            where = (
                f"Spark's logs are the driver's (the job server's output) and each executor's "
                f"stdout and stderr in its Worker's work/ folder (web UI of {master}, port 8080)"
            )
    else:
        return
    log.info(
        "%s; the SDK workers' logs go to the engine's task logs. The job server's output is "
        "logged here with --verbose.",
        where,
    )


def check_engine(runner: beam.runners.PipelineRunner, options: PipelineOptions) -> None:
    """Before submission: Java for a job server, Flink versions that match; where logs go."""
    if isinstance(runner, (FlinkRunner, SparkRunner)):
        check_log_level(options)
    if starts_java_job_server(runner, options):
        check_java(options, type(runner).__name__)
    if isinstance(runner, FlinkRunner) and not options.view_as(PortableOptions).job_endpoint:
        check_flink_version(options)
    log_locations(runner, options)
