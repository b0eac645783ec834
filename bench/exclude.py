"""A sha256 removal list against a run's rows: the Beam join against one process's set.

Writes a list of ``--entries`` random sha256 digests (one hex digest a line, as
``--exclude sha256:FILE`` reads it) and ``--rows`` rows' sha256 values, of
which ``--hit-share`` are on the list. Then, each in a child process of its own
so that its peak memory is its own:

- ``beam``: the job's own steps on Beam's local runner (FnApiRunner):
  ``ReadListDoFn`` reads and packs the list, ``Join`` groups entries and probes
  by key partition and matches them (``pipeline.compliance.exclude``); the rows'
  probes are packed the way ``ImageProbesDoFn`` packs a chunk's, from Parquet
  parts instead of raw shards;
- ``set`` (the anchor, in its best configuration): read the list into a Python
  set of 32-byte digests, then look every row up; one process, everything in
  memory.

Both must find the same rows. Prints one line per run and, last, a JSON object
with the medians: wall seconds, peak RSS (MiB) of each, and
``ratio`` = beam seconds / set seconds.

    nice -n 10 .venv/bin/python bench/exclude.py --entries 10000000 --rows 1000000
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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from memory import peak_rss_mb

PARTS = 16


def write_inputs(folder: str, entries: int, rows: int, hit_share: float, seed: int) -> int:
    """The list file and the rows' Parquet parts; returns how many rows are on the list."""
    rng = np.random.default_rng(seed)
    hits = int(rows * hit_share)
    listed = rng.bytes(32 * entries)
    with open(os.path.join(folder, "list.txt"), "w") as stream:
        step = 100_000
        for start in range(0, entries, step):
            block = listed[32 * start : 32 * min(entries, start + step)]
            stream.write("".join(block[i : i + 32].hex() + "\n" for i in range(0, len(block), 32)))
    picks = rng.choice(entries, size=hits, replace=False)
    digests = [listed[32 * i : 32 * i + 32].hex() for i in picks.tolist()]
    fresh = rng.bytes(32 * (rows - hits))
    digests += [fresh[i : i + 32].hex() for i in range(0, len(fresh), 32)]
    uids = [f"{i:032x}" for i in range(rows)]
    os.makedirs(os.path.join(folder, "rows"), exist_ok=True)
    for part in range(PARTS):
        chosen = slice(part, rows, PARTS)
        table = pa.table({"uid": uids[chosen], "sha256": digests[chosen]})
        pq.write_table(table, os.path.join(folder, "rows", f"part-{part:03d}.parquet"))
    return hits


def run_set(folder: str) -> int:
    """The anchor: a set of the listed digests, then a lookup per row."""
    with open(os.path.join(folder, "list.txt"), "rb") as stream:
        listed = {bytes.fromhex(line.decode()) for line in stream}
    found = 0
    for part in sorted(os.listdir(os.path.join(folder, "rows"))):
        table = pq.read_table(os.path.join(folder, "rows", part), columns=["sha256"])
        found += sum(bytes.fromhex(value) in listed for value in table["sha256"].to_pylist())
    return found


def run_beam(folder: str) -> int:
    """The job's list reader and partitioned join on the local runner."""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from paircurate.pipeline.compliance.exclude import (
        AFTER,
        DISTANCES,
        Join,
        ReadListDoFn,
        partitioned_blobs,
    )
    from paircurate.transforms.compliance.join import PROBE, exact_key, uid_bytes
    from paircurate.transforms.compliance.lists import ListSpec

    def probes(path: str):
        table = pq.read_table(path).to_pylist()
        packed = np.zeros(len(table), dtype=PROBE)
        packed["key"] = [exact_key("sha256", row["sha256"]) for row in table]
        packed["ref"] = [uid_bytes(row["uid"]) for row in table]
        yield from partitioned_blobs(packed)

    parts = sorted(os.path.join(folder, "rows", name) for name in os.listdir(f"{folder}/rows"))
    spec = ListSpec.parse(f"sha256:{folder}/list.txt")
    result = os.path.join(folder, "beam-count.txt")
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        lists = (
            pipeline
            | "Lists" >> beam.Create([(0, spec)])
            | "ReadLists" >> beam.ParDo(ReadListDoFn()).with_outputs(AFTER, DISTANCES, main="x")
        )
        rows = pipeline | "Parts" >> beam.Create(parts) | "Probes" >> beam.FlatMap(probes)
        matches = (lists[AFTER], rows) | "Join" >> Join()
        _ = (
            matches
            | "Count" >> beam.combiners.Count.Globally()
            | "Keep" >> beam.Map(lambda n: open(result, "w").write(str(n)))
        )
    with open(result) as stream:
        return int(stream.read())


def child(kind: str, folder: str) -> None:
    started = time.perf_counter()
    found = run_beam(folder) if kind == "beam" else run_set(folder)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    print(json.dumps({"kind": kind, "found": found, "seconds": seconds, "peak_mib": peak}))


def measure(kind: str, folder: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--folder", folder],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"the {kind} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000, help="sha256 list entries")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows looked up")
    parser.add_argument("--hit-share", type=float, default=0.01, help="share of rows listed")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; medians reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=("beam", "set"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.folder)
        return
    with tempfile.TemporaryDirectory(prefix="bench-exclude-") as folder:
        started = time.perf_counter()
        hits = write_inputs(folder, args.entries, args.rows, args.hit_share, args.seed)
        print(f"inputs written in {time.perf_counter() - started:.1f} s: {hits} rows listed")
        results: dict[str, list[dict]] = {"set": [], "beam": []}
        for _ in range(args.repeats):
            for kind in ("set", "beam"):
                result = measure(kind, folder)
                if result["found"] != hits:
                    raise SystemExit(f"{kind} found {result['found']} listed rows, not {hits}")
                results[kind].append(result)
                print(f"{kind}: {result['seconds']:.2f} s, peak {result['peak_mib']:.0f} MiB")

    def median(kind: str, field: str) -> float:
        return round(statistics.median(r[field] for r in results[kind]), 3)

    beam_s, set_s = median("beam", "seconds"), median("set", "seconds")
    print(json.dumps({
        "bench": "exclude", "entries": args.entries, "rows": args.rows, "listed_rows": hits,
        "repeats": args.repeats, "beam_s": beam_s, "set_s": set_s,
        "beam_peak_mib": median("beam", "peak_mib"), "set_peak_mib": median("set", "peak_mib"),
        "ratio": round(beam_s / set_s, 2),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
