"""What the engine tests and bench/engines.py share: the job, its options, its checks."""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq

from paircurate.pipeline.cli import finish_with_report
from paircurate.pipeline.run import make_pipeline, parse_args, run_job

ENGINE_PAIRS = 600
SEED = 29
SHARD_SIZE = 100
TIMEOUT_S = 5
SLOW_S = 12


@dataclass(frozen=True)
class JobInput:
    """The job's input list and takedown list on the S3 emulator."""

    manifest: str
    takedown: str
    taken_down: tuple[str, ...]


def engine_job_args(job_input: JobInput, output: str, s3, *extra: str) -> list[str]:
    """The whole job: reference scorer, dedup, a CLIP threshold, a takedown list, SemDeDup."""
    return [
        "--input", job_input.manifest,
        "--output", output,
        "--allow-private-networks",
        "--timeout", str(TIMEOUT_S),
        "--min-image-size", "64",
        "--max-aspect-ratio", "4",
        "--shard-size", str(SHARD_SIZE),
        "--keep-cols", "truth_label",
        "--clip-model", "paircurate-ref",
        "--clip-threshold", "0.2",
        "--semantic-dedup",
        "--exclude", f"url:{job_input.takedown}",
        *s3.beam_args,
        *extra,
    ]  # fmt: skip


@dataclass
class RunFolder:
    """What one run left on the store under ``prefix``."""

    prefix: str
    ledger: list[dict]
    shards: dict[str, bytes]
    keys: list[str]
    stats: dict


def read_run(s3, prefix: str) -> RunFolder:
    keys = s3.keys(prefix + "/")
    ledger_keys = [key for key in keys if "/ledger/" in key and key.endswith(".parquet")]
    ledger = [
        row for key in ledger_keys for row in pq.read_table(io.BytesIO(s3.get(key))).to_pylist()
    ]
    stats = json.loads(s3.get(f"{prefix}/stats.json")) if f"{prefix}/stats.json" in keys else {}
    return RunFolder(prefix, ledger, s3.shards(prefix), keys, stats)


WORKER_LOG_LEVEL = "WARN"  # the name both SDKs read


def process_environment(boot: Path) -> list[str]:
    return [
        "--environment_type=PROCESS",
        f"--environment_config={json.dumps({'command': str(boot)})}",
    ]


def external_environment(pool: str) -> list[str]:
    return ["--environment_type=EXTERNAL", f"--environment_config={pool}"]


def flink_args(engines, master: str) -> list[str]:
    return [
        "--runner=FlinkRunner", f"--flink_master={master}", "--flink_version=1.19",
        f"--flink_job_server_jar={engines.flink_job_server}", "--parallelism=2",
    ]  # fmt: skip


def spark_args(engines, master: str) -> list[str]:
    return [
        "--runner=SparkRunner", f"--spark_master_url={master}",
        f"--spark_job_server_jar={engines.spark_job_server}",
    ]  # fmt: skip


def run_with_probe(argv: list[str], probe: Path) -> dict | None:
    """The job with one more branch that reports from a worker (to ``probe``, a local file)."""

    def where_am_i(_) -> str:
        """Where a worker runs, what it imported and what it was given.

        A local function, so it travels by value: the worker cannot import this test.
        """
        import paircurate.pipeline.job

        given = json.loads(os.environ.get("PIPELINE_OPTIONS") or "{}")
        # The portable API names each option beam:option:NAME:v1.
        given = {key.split(":")[-2] if ":" in key else key: v for key, v in given.items()}
        return json.dumps(
            {
                "pid": os.getpid(),
                "module": paircurate.pipeline.job.__file__,
                "s3_endpoint_url": given.get("s3_endpoint_url"),
                "aws_variables": sorted(name for name in os.environ if name.startswith("AWS_")),
                "log_level": logging.getLevelName(logging.getLogger().level),
            }
        )

    config, beam_args = parse_args(argv)
    pipeline = make_pipeline(beam_args)
    _ = (
        pipeline
        | "ProbeStart" >> beam.Create([None])
        | "Probe" >> beam.Map(where_am_i)
        | "ProbeWrite" >> beam.io.WriteToText(str(probe), shard_name_template="")
    )
    return run_job(config, beam_args, test_pipeline=pipeline)


def assert_worker_from_the_wheel(probe: Path, pool_env: Path, s3) -> None:
    found = json.loads(probe.read_text())
    assert found["pid"] != os.getpid()
    assert Path(found["module"]).resolve().is_relative_to(pool_env.resolve())
    assert found["s3_endpoint_url"] == s3.endpoint  # provisioned, not inherited:
    assert found["aws_variables"] == []
    assert found["log_level"] == "WARNING"  # provisioned --default_sdk_harness_log_level


# A sample's fields that name the run's own input file.
INPUT_FIELDS = ("source",)


def samples(shards: dict[str, bytes]) -> dict[str, dict[str, object]]:
    """Shard -> member -> its bytes, or its JSON with the input path masked."""
    found = {}
    for name, data in shards.items():
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = {member.name: tar.extractfile(member).read() for member in tar.getmembers()}
        for member, content in members.items():
            if member.endswith(".json"):
                fields = json.loads(content)
                members[member] = {
                    **fields,
                    **dict.fromkeys(fields.keys() & set(INPUT_FIELDS), "*"),
                }
        found[name] = members
    return found


def assert_same_as_reference(result: RunFolder, reference: RunFolder) -> None:
    rows = result.ledger
    assert sorted(row["row_number"] for row in rows) == list(range(ENGINE_PAIRS))
    assert len({row["uid"] for row in rows}) == ENGINE_PAIRS
    decided = {row["uid"]: (row["status"], row["reason"]) for row in rows}
    assert decided == {row["uid"]: (row["status"], row["reason"]) for row in reference.ledger}
    if result.shards != reference.shards:  # where they differ, only in the input's path
        ours, theirs = samples(result.shards), samples(reference.shards)
        assert ours.keys() == theirs.keys()
        differ = [
            (shard, member, ours[shard].get(member), theirs[shard].get(member))
            for shard in ours
            for member in ours[shard].keys() | theirs[shard].keys()
            if ours[shard].get(member) != theirs[shard].get(member)
        ]
        assert not differ, differ[:3]
    assert f"{result.prefix}/report.html" in result.keys
    # Counts come from the ledger (Spark reports no metrics to the launcher).
    assert result.stats["rows_in"] == ENGINE_PAIRS
    assert result.stats["kept"] == sum(row["status"] == "kept" for row in rows)


def run_engine(name, runner_args, environment, s3, engine_input, tmp_path) -> RunFolder:
    prefix = f"engines/{name}"
    argv = engine_job_args(
        engine_input, s3.url(prefix), s3, *runner_args, *environment,
        f"--default_sdk_harness_log_level={WORKER_LOG_LEVEL}",
    )  # fmt: skip
    run_with_probe(argv, tmp_path / "probe")
    assert finish_with_report(s3.url(prefix)) == 0  # what `paircurate run` does next
    return read_run(s3, prefix)
