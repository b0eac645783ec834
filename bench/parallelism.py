"""SDK worker processes and throughput with an EXTERNAL worker pool: 1 worker against N.

The shape of a Flink or Spark node, on one machine: Beam's portable runner
engine (FnApiRunner, the engine of Beam's Python job service) asks a worker
pool (``worker_pool_main``, what the image's ``--worker_pool`` mode starts)
for N SDK workers, and the pool starts one Python process per request. N is
``--direct_num_workers``, this engine's counterpart of Flink's and Spark's
``--sdk_worker_parallelism`` (Beam's Python job service itself always asks for
one). The anchor is one worker: Beam's default on Flink and Spark. The image
work runs in the download threads (``--image-processes 0``), as on those runners.

    python bench/parallelism.py --pairs 600 --workers 2 --repeat 3

Last line: one JSON object (bench convention); ``ratio`` is pairs/s with N
workers over pairs/s with one, medians of the runs; ``worker_processes`` is the
number of SDK worker processes the pool started for each run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.transforms import environments
from e2e import serve

from paircurate.pipeline.demo import demo_defaults
from paircurate.pipeline.run import parse_args, run_job


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], port: int, log: Path, cwd: str) -> subprocess.Popen:
    # The pool starts each worker as `python -c ...` from PATH: this interpreter's.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with log.open("ab") as out:
        service = subprocess.Popen(command, stdout=out, stderr=out, cwd=cwd, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise RuntimeError(f"{command} exited with {service.returncode}: see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return service
        except OSError:
            time.sleep(0.2)
    service.kill()
    raise TimeoutError(f"{command} did not listen on {port}")


def started_workers(log: Path) -> int:
    """The pool logs one line per SDK worker process it starts."""
    return log.read_text(errors="replace").count("Starting worker with command")


def pipeline_on_pool(beam_args: list[str]) -> beam.Pipeline:
    """FnApiRunner with the EXTERNAL environment as its default, not the SDK in-process."""
    options = PipelineOptions(beam_args)
    environment = environments.Environment.from_options(options.view_as(PortableOptions))
    return beam.Pipeline(runner=FnApiRunner(default_environment=environment), options=options)


def run_once(manifest: str, workers: int, pool: str, pool_log: Path) -> dict:
    before = started_workers(pool_log)
    with tempfile.TemporaryDirectory(prefix="paircurate-parallel-") as output:
        config, beam_args = parse_args([
            *demo_defaults(), "--input", manifest, "--output", os.path.join(output, "out"),
            "--allow-private-networks", "--image-processes", "0",
            "--environment_type=EXTERNAL", f"--environment_config={pool}",
            f"--direct_num_workers={workers}",
        ])  # fmt: skip
        started = time.perf_counter()
        stats = run_job(config, beam_args, test_pipeline=pipeline_on_pool(beam_args))
        seconds = time.perf_counter() - started
    return {
        "workers": workers,
        "seconds": seconds,
        "rows_in": stats["rows_in"],
        "pairs_per_s": stats["rows_in"] / seconds,
        "worker_processes": started_workers(pool_log) - before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians reported")
    args = parser.parse_args()
    services = []
    with tempfile.TemporaryDirectory(prefix="paircurate-web-") as folder:
        manifest = os.path.join(folder, "manifest.parquet")
        pool_log = Path(folder, "pool.log")
        pool_log.touch()
        services.append(serve(args.pairs, args.seed, manifest))
        try:
            pool_port = free_port()
            module = "apache_beam.runners.worker.worker_pool_main"
            services.append(
                start([sys.executable, "-m", module, f"--service_port={pool_port}"],
                      pool_port, pool_log, folder)
            )  # fmt: skip
            runs: dict[int, list[dict]] = {1: [], args.workers: []}
            for attempt in range(args.repeat):
                for workers in runs:  # alternate, so that load from elsewhere hits both
                    result = run_once(manifest, workers, f"localhost:{pool_port}", pool_log)
                    runs[workers].append(result)
                    print(f"run {attempt + 1}: {json.dumps(result)}", flush=True)
        finally:
            for service in reversed(services):
                service.terminate()
                service.wait(timeout=30)
    anchor = statistics.median(r["pairs_per_s"] for r in runs[1])
    ours = statistics.median(r["pairs_per_s"] for r in runs[args.workers])
    print(json.dumps({
        "bench": "parallelism", "ours": round(ours, 1), "anchor": round(anchor, 1),
        "ratio": round(ours / anchor, 2), "unit": "pairs/s",
        "anchor_is": "one SDK worker (Beam's default --sdk_worker_parallelism on Flink/Spark)",
        "workers": args.workers, "pairs": args.pairs, "runs": args.repeat,
        "worker_processes": {str(w): [r["worker_processes"] for r in rs] for w, rs in runs.items()},
        "cores": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
