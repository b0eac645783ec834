"""The same job on the local runner, Flink and Spark: pairs/s, engine start-up apart.

The whole job (reference scorer, dedup, a CLIP threshold, a takedown list,
semantic dedup) over one synthetic web, on:

- ``local``: the in-process FnApiRunner, the anchor;
- ``flink_embedded``: Beam's Flink job server running Flink in its own JVM
  (``--flink-master=[local]``);
- ``flink_cluster``: a standalone Flink cluster (JobManager and TaskManager);
- ``spark_local``: the Spark job server with ``local[2]``;
- ``spark_cluster``: a standalone Spark cluster (Master and Worker).

Engines and jars come from ``deploy/engines/fetch.sh``, workers from
``paircurate-boot`` (PROCESS environment) in this Python. Every repeat starts
each engine afresh: ``startup_s`` is the time from starting its processes (the
cluster's and the job server's) until the job server answers; ``pairs_per_s``
counts only the job, from submission to its end. The configurations take turns
in each repeat, so that load from elsewhere falls on all of them.

    python bench/engines.py --pairs 600 --repeat 3

Last line: one JSON object (bench convention). The headline, ``overhead``, is
each engine's median job time over the local runner's (above 1: slower).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pyarrow.parquet as pq
from e2e import serve

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT / "tests" / "engines"))  # the clusters the engine tests start

from engine_cluster import (  # noqa: E402
    HOST,
    Engines,
    FlinkCluster,
    SparkCluster,
    free_port,
    start,
    stop,
    wait_for_port,
)

from paircurate.pipeline.engines import JAVA17_OPENS  # noqa: E402
from paircurate.pipeline.run import parse_args, run_job  # noqa: E402

JOB = [
    "--allow-private-networks", "--allow-local-paths", "--timeout", "5", "--min-image-size", "64",
    "--max-aspect-ratio", "4", "--shard-size", "100", "--clip-model", "paircurate-ref",
    "--clip-threshold", "0.2", "--semantic-dedup",
]  # fmt: skip
CONFIGS = ("local", "flink_embedded", "flink_cluster", "spark_local", "spark_cluster")


@contextmanager
def job_server(jar: Path, engine_args: list[str], log: Path) -> Iterator[str]:
    """Beam's job server from the jar, with the flags the launcher gives it on Java 17."""
    port = free_port()
    command = [
        "java", *JAVA17_OPENS, "-jar", str(jar), *engine_args, "--job-port", str(port),
        "--artifact-port", "0", "--expansion-port", "0",
    ]  # fmt: skip
    process = start(command, log, {**os.environ, "SPARK_LOCAL_IP": HOST}, log.parent)
    try:
        wait_for_port(port, process)
        yield f"{HOST}:{port}"
    finally:
        stop(process)


def engine(name: str, engines: Engines, folder: Path) -> Callable[[ExitStack], str]:
    """How to start one configuration's processes; returns its job endpoint."""
    flink, spark = engines.flink_job_server, engines.spark_job_server

    def started(stack: ExitStack) -> str:
        if name == "flink_embedded":
            return stack.enter_context(job_server(flink, ["--flink-master", "[local]"], log))
        if name == "flink_cluster":
            cluster = stack.enter_context(FlinkCluster(engines, folder / "flink"))
            return stack.enter_context(job_server(flink, ["--flink-master", cluster.master], log))
        if name == "spark_local":
            return stack.enter_context(job_server(spark, ["--spark-master-url", "local[2]"], log))
        cluster = stack.enter_context(SparkCluster(engines, folder / "spark"))
        master = ["--spark-master-url", cluster.master_url]
        return stack.enter_context(job_server(spark, master, log))

    folder.mkdir(parents=True)
    log = folder / "job-server.log"
    return started


def run_once(manifest: str, takedown: str, output: str, extra: list[str]) -> float:
    argv = ["--input", manifest, "--output", output, "--exclude", f"url:{takedown}", *JOB, *extra]
    config, beam_args = parse_args(argv)
    started = time.perf_counter()
    stats = run_job(config, beam_args)
    seconds = time.perf_counter() - started
    if stats is None or stats["rows_in"] <= 0:
        raise RuntimeError(f"no rows counted: {stats}")
    return seconds


def one_round(name: str, engines: Engines, work: Path, inputs: tuple[str, str]) -> dict:
    output = str(work / "out")
    if name == "local":
        return {"startup_s": 0.0, "job_s": run_once(*inputs, output, [])}
    boot = shutil.which("paircurate-boot", path=str(Path(sys.executable).parent))
    environment = [
        "--environment_type=PROCESS",
        f"--environment_config={json.dumps({'command': boot})}",
    ]
    runner = ["--runner=PortableRunner", "--default_sdk_harness_log_level=WARN", *environment]
    with ExitStack() as stack:
        began = time.perf_counter()
        endpoint = engine(name, engines, work / "engine")(stack)
        startup = time.perf_counter() - began
        job = run_once(*inputs, output, [*runner, f"--job_endpoint={endpoint}"])
    return {"startup_s": startup, "job_s": job}


def summary(runs: list[dict], pairs: int) -> dict:
    job = statistics.median(run["job_s"] for run in runs)
    return {
        "pairs_per_s": round(pairs / job, 2),
        "pairs_per_s_runs": [round(pairs / run["job_s"], 2) for run in runs],
        "job_s": round(job, 1),
        "startup_s": round(statistics.median(run["startup_s"] for run in runs), 1),
        "startup_s_runs": [round(run["startup_s"], 1) for run in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians reported")
    parser.add_argument("--only", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    args = parser.parse_args()
    engines = Engines.fetch()
    runs: dict[str, list[dict]] = {name: [] for name in ["local", *args.only] if name in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="paircurate-engines-") as folder:
        manifest = os.path.join(folder, "manifest.parquet")
        server = serve(args.pairs, args.seed, manifest)
        takedown = Path(folder, "takedown.csv")
        urls = pq.read_table(manifest, columns=["url"]).column("url").to_pylist()
        takedown.write_text("url\n" + "\n".join(urls[3:8:4]) + "\n")
        try:
            for attempt in range(args.repeat):
                for name in runs:
                    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=folder))
                    result = one_round(name, engines, work, (manifest, str(takedown)))
                    runs[name].append(result)
                    print(f"run {attempt + 1} {name}: {json.dumps(result)}", flush=True)
                    shutil.rmtree(work, ignore_errors=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    results = {name: summary(found, args.pairs) for name, found in runs.items()}
    local_s = results["local"]["job_s"]
    overhead = {
        name: round(r["job_s"] / local_s, 2) for name, r in results.items() if name != "local"
    }
    print(json.dumps({
        "bench": "engines", "overhead": overhead, "unit": "engine job time / local runner job time",
        "anchor_is": "the in-process FnApiRunner (paircurate's local default)",
        "results": results, "pairs": args.pairs, "runs": args.repeat, "cores": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
