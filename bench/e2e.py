"""End-to-end throughput and peak memory of the demo job on an N-pair synthetic web.

The synthetic web is served by its own process, as a remote site would be; the
job runs in another child process so that its peak RSS is its own. Run it at
two sizes to check that memory stays flat as input grows (``--repeat`` runs,
3 by default, against the same served web; medians are reported):

    python bench/e2e.py --pairs 20000
    python bench/e2e.py --pairs 100000

Further flags go to the job (e.g. ``--image-processes 0``). Last line: one JSON
object (bench convention) with ``pairs_per_s``, ``peak_mb`` (the job's process)
and ``children_peak_mb`` (the sum of the peaks of the processes under it: the
image pool's fork server and the processes it forked, each counting the pages
they share).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from memory import IMPORTABLE

WORKER = (
    IMPORTABLE
    + r"""
import json, os, sys, time
from memory import descendants, peak_rss_mb
from paircurate.pipeline.demo import demo_defaults
from paircurate.pipeline.run import run
manifest, output = sys.argv[1], sys.argv[2]
started = time.perf_counter()
stats = run([*demo_defaults(), "--input", manifest, "--output", output,
             "--allow-private-networks", *sys.argv[3:]])
seconds = time.perf_counter() - started

children = descendants(os.getpid())  # the image pool's fork server and its processes
print(json.dumps({"seconds": seconds, "rows_in": stats["rows_in"],
                  "kept": stats["kept"], "stages": stats["stages"],
                  "peak_mb": peak_rss_mb(),
                  "children_peak_mb": sum(peak_rss_mb(pid) for pid in children)}))
"""
)


def serve(pairs: int, seed: int, manifest: str) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "paircurate.synthweb", "--pairs", str(pairs), "--seed", str(seed),
         "--manifest", manifest, "--slow-seconds", "6"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    line = server.stdout.readline() if server.stdout else ""
    if "manifest" not in line:
        server.kill()
        raise RuntimeError(f"synthetic web did not start: {line!r}")
    return server


def run_once(manifest: str, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="paircurate-e2e-") as output:
        done = subprocess.run(
            [sys.executable, "-c", WORKER, manifest, os.path.join(output, "out"), *extra],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"job failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs; medians are reported")
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="paircurate-web-") as folder:
        manifest = os.path.join(folder, "manifest.parquet")
        server = serve(args.pairs, args.seed, manifest)
        try:
            runs = []
            for attempt in range(args.repeat):
                result = run_once(manifest, extra)
                result["pairs_per_s"] = result["rows_in"] / result["seconds"]
                runs.append(result)
                print(
                    f"run {attempt + 1}: {result['rows_in']} pairs in {result['seconds']:.1f} s "
                    f"({result['pairs_per_s']:.1f} pairs/s), kept {result['kept']}, "
                    f"peak {result['peak_mb']:.0f} MB, stages {result['stages']}",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
    pairs_per_s = statistics.median(r["pairs_per_s"] for r in runs)
    peak_mb = statistics.median(r["peak_mb"] for r in runs)
    children_mb = statistics.median(r["children_peak_mb"] for r in runs)
    print(json.dumps({
        "bench": "e2e", "ours": round(pairs_per_s, 1), "unit": "pairs/s",
        "pairs": args.pairs, "runs": len(runs), "pairs_per_s": round(pairs_per_s, 1),
        "peak_mb": round(peak_mb, 1), "children_peak_mb": round(children_mb, 1),
        "options": extra, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
