"""Run the job: parse options, check inputs, build the graph, run it, report.

``run(argv)`` is the one entry point the CLI, the demo, the tests and the
benchmarks share, in the way of Beam's examples.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.compliance.checks import check_list_files
from paircurate.pipeline.engines import apply_engine_defaults, check_engine, check_engine_flags
from paircurate.pipeline.extract.plan import plan_crawl
from paircurate.pipeline.ingest.read import plan_inputs
from paircurate.pipeline.job import build
from paircurate.pipeline.memory import limit_malloc_arenas
from paircurate.pipeline.options import add_config_arguments, config_from_args
from paircurate.pipeline.progress import report_progress
from paircurate.pipeline.runners import (
    apply_worker_parallelism,
    check_paths_reach_workers,
    writes_executable,
)
from paircurate.pipeline.scoring.checks import check_clip
from paircurate.schemas.config import JobConfig
from paircurate.transforms.output.store import OutputLayout

log = logging.getLogger(__name__)

VERSIONED = (
    "paircurate", "apache-beam", "pyarrow", "pillow", "numpy", "webdataset", "open_clip_torch",
    "torch",
)  # fmt: skip
STAGE_COUNTERS = {
    "extract": ("extract_pairs", "extract_ms"),
    "read": ("read_rows", "read_ms"),
    "caption": ("caption_rows", "caption_ms"),
    "fetch": ("fetch_rows", "fetch_ms"),
    "write": ("write_samples", "write_ms"),
}
RETRY_COUNTERS = {"rows": "fetch_rows_retried", "recovered": "fetch_rows_recovered"}
DEDUP_COUNTERS = {
    "rows": "dedup_rows",
    "local_edges": "dedup_local_edges",
    "bucket_entries": "dedup_entries",
    "candidates_rejected": "dedup_candidates_rejected",
    "unconverged_edges": "dedup_unconverged_edges",
}


def parse_args(argv: list[str] | None) -> tuple[JobConfig, list[str]]:
    """Our options become a JobConfig; every flag we do not know is left for Beam."""
    parser = argparse.ArgumentParser(prog="paircurate run", add_help=False)
    add_config_arguments(parser)
    known, beam_args = parser.parse_known_args(argv)
    return config_from_args(known), beam_args


def make_pipeline(beam_args: list[str]) -> beam.Pipeline:
    """A pipeline on the runner asked for; without --runner, the in-process FnApiRunner.

    Beam's own default tries to download the Prism runner first, which fails
    offline; FnApiRunner honours --direct_num_workers and --direct_running_mode.
    Flink, Spark and portable runs get a worker per core of each node unless
    --sdk_worker_parallelism says otherwise (see ``runners``).
    """
    options = PipelineOptions(beam_args)
    if not any(arg == "--runner" or arg.startswith("--runner=") for arg in beam_args):
        return beam.Pipeline(runner=FnApiRunner(), options=options)
    pipeline = beam.Pipeline(options=options)
    apply_worker_parallelism(pipeline, beam_args)
    apply_engine_defaults(pipeline, beam_args)
    return pipeline


def package_versions() -> dict[str, str]:
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def json_safe(value: Any) -> Any:
    """Options as JSON: infinities become null, tuples lists."""
    if isinstance(value, float) and math.isinf(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def recorded_options(config: JobConfig) -> dict:
    """The options stats.json keeps, local input paths made absolute.

    ``paircurate retry-failed`` rebuilds the run from them, possibly from
    another working directory.
    """
    inputs = tuple(path if "://" in path else os.path.abspath(path) for path in config.inputs.input)
    recorded = dataclasses.replace(config, inputs=dataclasses.replace(config.inputs, input=inputs))
    return json_safe(asdict(recorded))


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> dict:
    config, beam_args = parse_args(argv)
    return run_job(config, beam_args, test_pipeline)


def run_job(
    config: JobConfig,
    beam_args: list[str] = (),
    test_pipeline: beam.Pipeline | None = None,
    wait: bool = True,
) -> dict | None:
    """Run the whole job and return the stats document (also in DIR/stats.json).

    With ``wait=False`` the job is only submitted (a Dataflow template launch has
    no job to wait on yet); stats.json then has the counts but no timings. So
    too with ``--output_executable_path``, where the job runs when the jar the
    job server wrote is submitted.
    """
    limit_malloc_arenas()  # before the local runner starts its threads
    check_engine_flags(beam_args)  # before Beam parses them
    fs.configure(beam_args)  # object-store options, before the first input is looked at
    pipeline = test_pipeline or make_pipeline(list(beam_args))
    check_paths_reach_workers(config, pipeline.runner, pipeline.options)
    check_engine(pipeline.runner, pipeline.options)
    check_clip(config, beam_args)  # the model's name, tag and weights; loads no model
    check_list_files(config.compliance)  # the top of every removal list and evaluation set
    # A crawl (WAT or WARC files) is read by the Extract step; lists by Read.
    plan = plan_crawl(config.inputs, config.extract) or plan_inputs(config.inputs)
    log.info("reading %d input file(s)", len(plan.files))
    run_info = {"options": recorded_options(config), "versions": package_versions()}
    build(pipeline, config, plan, run_info)
    started = time.perf_counter()
    with report_progress():
        result = pipeline.run()
        if writes_executable(pipeline.options):
            result.wait_until_finish()  # the job server's job is writing the jar
            return None
        if not wait:
            return None
        result.wait_until_finish()
    duration = time.perf_counter() - started
    stats = complete_stats(config.output.output, result, duration, config.output.retry_failed)
    if config.output.runs_table:
        from paircurate.pipeline.output.write_report import add_to_runs_table

        stats["runs_table_file"] = add_to_runs_table(config.output.runs_table, stats)
    return stats


def counter_values(result) -> dict[str, float]:
    """Beam's counters by name, where the runner reports them; {} where it does not."""
    try:
        return {
            c.key.metric.name: c.committed or c.attempted or 0
            for c in result.metrics().query()["counters"]
        }
    except Exception:  # noqa: BLE001 - some runners return no metrics
        return {}


def stage_metrics(counters: dict[str, float]) -> dict[str, dict[str, float]]:
    """Rows and busy seconds per stage from Beam's counters."""
    if not counters:
        return {}
    stages = {}
    for stage, (rows_name, ms_name) in STAGE_COUNTERS.items():
        rows, busy = counters.get(rows_name, 0), counters.get(ms_name, 0) / 1000.0
        stages[stage] = {
            "rows": rows,
            "busy_s": round(busy, 3),
            "rows_per_busy_s": round(rows / busy, 1) if busy else None,
        }
    return stages


def counter_group(counters: dict[str, float], names: dict[str, str]) -> dict[str, float | None]:
    """Named counters (None each where the runner reports none), e.g. RETRY_COUNTERS."""
    if not counters:
        return dict.fromkeys(names)
    return {key: counters.get(name, 0) for key, name in names.items()}


def complete_stats(output: str, result, duration: float, retried: bool = False) -> dict:
    """Add the wall time and stage timings, known only after the run, to stats.json.

    ``dedup`` holds what the Decide step counted (a non-zero ``unconverged_edges``
    means --cluster-rounds was too low); a --retry-failed run also records what
    it retried (``retry``).
    """
    path = OutputLayout(fs.FILES, output).stats_json
    stats = json.loads(fs.read_bytes(path))
    stats["duration_s"] = round(duration, 3)
    stats["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    stats["rows_per_s"] = round(stats["rows_in"] / duration, 1) if duration else None
    counters = counter_values(result)
    stats["stages"] = stage_metrics(counters)
    stats["dedup"] = counter_group(counters, DEDUP_COUNTERS)
    if retried:
        stats["retry"] = counter_group(counters, RETRY_COUNTERS)
    fs.write_bytes(path, json.dumps(stats, indent=2).encode())
    return stats
