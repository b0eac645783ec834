"""What a runner needs from us: Python parallelism per node, and paths its workers can reach.

Flink and Spark run Python in SDK worker processes that Beam's job server
starts next to each TaskManager or executor, ``--sdk_worker_parallelism`` of
them per node, 1 by default: one Python process would then do the work of
every slot of the node. Unless told otherwise we ask for 0, which Beam's job
servers read as one worker per core of the node, less one for the JVM. Dataflow
already starts one per core, and the local runner has its own
``--direct_num_workers``.

Where the workers run decides which paths they can write: a worker on another
machine, or in a container, writes a local ``--output`` to its own disk, and
the outputs are lost although the job succeeds. So a local path with such a
runner is refused before submission (see ``remote_workers``).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    PipelineOptions,
    PortableOptions,
    SparkRunnerOptions,
)
from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner
from apache_beam.runners.direct.direct_runner import (
    BundleBasedDirectRunner,
    DirectRunner,
    SwitchingDirectRunner,
)
from apache_beam.runners.portability.flink_runner import FlinkRunner
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.runners.portability.portable_runner import PortableRunner
from apache_beam.runners.portability.prism_runner import PrismRunner
from apache_beam.runners.portability.spark_runner import SparkRunner

from paircurate.schemas.config import ConfigError, JobConfig

log = logging.getLogger(__name__)

PARALLELISM_FLAG = "--sdk_worker_parallelism"
# Beam's job servers turn 0 into the node's cores, less one (at least one).
AUTO_PARALLELISM = 0
LOCAL_RUNNERS = (FnApiRunner, DirectRunner, SwitchingDirectRunner, BundleBasedDirectRunner)
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
# Flink's master names for a Flink that the job server starts in its own process.
EMBEDDED_FLINK = {"[local]", "[auto]"}


def is_portable(runner: beam.runners.PipelineRunner) -> bool:
    """Flink, Spark or a job server of one's own: SDK workers that Beam's job server starts."""
    return isinstance(runner, PortableRunner) and not isinstance(runner, PrismRunner)


def worker_parallelism(runner: beam.runners.PipelineRunner, beam_args: list[str]) -> int | None:
    """The ``--sdk_worker_parallelism`` we set: 0 (a worker per core) where none was given."""
    given = any(
        arg == PARALLELISM_FLAG or arg.startswith(PARALLELISM_FLAG + "=") for arg in beam_args
    )
    return AUTO_PARALLELISM if is_portable(runner) and not given else None


def apply_worker_parallelism(pipeline: beam.Pipeline, beam_args: list[str]) -> None:
    parallelism = worker_parallelism(pipeline.runner, beam_args)
    if parallelism is not None:
        pipeline.options.view_as(PortableOptions).sdk_worker_parallelism = parallelism


def writes_executable(options: PipelineOptions) -> str | None:
    """``--output_executable_path``: the job server writes the job as a jar to run later."""
    path = options.view_as(PortableOptions).output_executable_path
    if path:
        log.info("the job is written as a jar to %s; it runs when that jar is submitted", path)
    return path


def _host(address: str | None) -> str | None:
    """``localhost:8099`` -> ``localhost``; also for ``spark://host:7077`` and ``[::1]:50000``."""
    if not address:
        return None
    return urlsplit(address if "://" in address else "//" + address).hostname


def _engine_on_this_machine(runner: PortableRunner, options: PipelineOptions) -> bool:
    """Whether the engine itself runs here: only where its options say so without doubt.

    A job server on localhost may still submit to a remote cluster, so a
    PortableRunner counts as local only with the job service in this process.
    """
    if isinstance(runner, FlinkRunner):
        master = options.view_as(FlinkRunnerOptions).flink_master
        return master in EMBEDDED_FLINK or _host(master) in LOCAL_HOSTS
    if isinstance(runner, SparkRunner):
        master = options.view_as(SparkRunnerOptions).spark_master_url
        return master.startswith("local") or _host(master) in LOCAL_HOSTS
    return options.view_as(PortableOptions).job_endpoint in (None, "", "embed")


def remote_workers(runner: beam.runners.PipelineRunner, options: PipelineOptions) -> str | None:
    """Why the runner's workers may not see this machine's disk, or None where they do.

    Local runners and LOOPBACK (workers in this process) see it. EXTERNAL and
    PROCESS workers do when the engine runs here and, for EXTERNAL, the
    worker pool is on localhost. DOCKER workers (the portable default) write
    inside their containers; Dataflow's workers are VMs.
    """
    if isinstance(runner, LOCAL_RUNNERS) or isinstance(runner, PrismRunner):
        return None
    name = type(runner).__name__
    if isinstance(runner, DataflowRunner):
        return f"{name} runs the workers on Compute Engine VMs"
    if not isinstance(runner, PortableRunner):
        return f"{name} may run its workers on other machines"
    portable = options.view_as(PortableOptions)
    environment = (portable.environment_type or "DOCKER").upper()
    if environment == "LOOPBACK":
        return None
    if environment == "DOCKER":
        return f"{name} runs the workers in Docker containers (--environment_type=DOCKER)"
    if not _engine_on_this_machine(runner, options):
        return f"{name} submits to an engine that may run its workers on other machines"
    if environment == "EXTERNAL":
        pool = _host((portable.environment_config or "").split(",")[0])
        if pool not in LOCAL_HOSTS:
            return f"{name} starts the workers in the worker pool at {portable.environment_config}"
        return None
    if environment == "PROCESS":
        return None
    return f"{name} runs the workers with --environment_type={environment}"


def local_paths(config: JobConfig) -> list[str]:
    """The job's --input and --output paths that are on this machine's disk."""
    paths = [*config.inputs.input, config.output.output]
    return [path for path in paths if "://" not in path or path.startswith("file://")]


def check_paths_reach_workers(
    config: JobConfig, runner: beam.runners.PipelineRunner, options: PipelineOptions
) -> None:
    """Refuse local --input/--output paths with workers that may not share this disk.

    Raises ConfigError before anything is submitted; ``--allow-local-paths``
    accepts them (the same network mount at the same path on every worker).
    """
    if config.output.allow_local_paths:
        return
    local = local_paths(config)
    reason = remote_workers(runner, options) if local else None
    if reason:
        raise ConfigError(
            f"{', '.join(local)}: a local path, but {reason}, which would read and write their "
            "own disks (the outputs would be lost). Use storage every worker reaches "
            "(gs://, s3://, hdfs://), or pass --allow-local-paths if the path is the same "
            "shared mount on every worker."
        )
