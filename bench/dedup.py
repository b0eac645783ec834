"""The caption dedup stage at scale: wall time and peak memory on the local runner.

Corpus (``--rows`` captions, 200,000 by default, 20 % duplicates):

* distinct captions: pairs of Conceptual Captions validation captions joined by
  " ; " (15,833 real captions give 250 million distinct joins), so the
  corpus is real text with the length of long alt-texts;
* 10 % one boilerplate caption repeated (20,000 rows at 200,000): the huge
  bucket that must stay a star;
* 10 % edited copies of distinct captions (case, punctuation, a word added or
  dropped, a suffix such as " - stock photo"), each a labelled near-duplicate.

Every row has its own URL, so nothing is a URL duplicate. Each measurement is a
whole text-only job (read, caption stage, chunk commit, Decide, Write) in a
child process, with ``--drop-caption-repeats``; the same job without it (no
Decide step) is the baseline, so ``dedup_s`` is the stage's own share. Peak
memory is the child's maximum RSS. The same is measured at ``--small-rows``
(50,000 by default) to show how memory grows with the input and the largest
bucket (5,000 then 20,000 rows).

Context anchor: datasketch ``MinHashLSH`` (threshold 0.8, 128 permutations,
signatures by ``MinHash.bulk`` with our shingle hash) inserting and querying
the same captions in one process, with no verification and no clusters:
``ratio`` = its wall time / our dedup stage's.

Last line: one JSON object (bench convention).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from minhash import EDIT_KINDS, edit
from shared_data import cc3m_captions

BOILERPLATE = "Stock photo - image not available"

CHILD = """
import json, resource, sys, time
from paircurate.pipeline.run import run
started = time.perf_counter()
stats = run(sys.argv[1:])
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "reason": {k: v["count"] for k, v in stats["reason"].items()},
                  "kept": stats["kept"]}))
"""


def corpus(rows: int, seed: int) -> tuple[list[str], list[tuple[int, int]]]:
    """Captions, and the labelled (original, edited copy) row pairs."""
    real = cc3m_captions()
    rng = random.Random(seed)
    repeats = rows // 10
    edits = rows // 10
    distinct = rows - repeats - edits
    captions = [f"{rng.choice(real)} ; {rng.choice(real)}" for _ in range(distinct)]
    labelled = []
    for _ in range(edits):
        original = rng.randrange(distinct)
        labelled.append((original, len(captions)))
        captions.append(edit(captions[original], rng.choice(EDIT_KINDS), rng))
    captions += [BOILERPLATE] * repeats
    order = list(range(len(captions)))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    shuffled = [captions[i] for i in order]
    return shuffled, [(position[a], position[b]) for a, b in labelled]


def write_input(captions: list[str], folder: Path) -> Path:
    path = folder / "input.parquet"
    urls = [f"https://example.com/img/{i}.jpg" for i in range(len(captions))]
    table = pa.table({"url": urls, "caption": captions, "row": list(range(len(captions)))})
    pq.write_table(table, path)
    return path


def run_child(source: Path, output: Path, *extra: str) -> dict:
    argv = [
        "--input", str(source), "--output", str(output), "--text-only",
        "--shard-size", "10000", "--keep-cols", "row", *extra,
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def labelled_recall(output: Path, labelled: list[tuple[int, int]]) -> float:
    """Share of labelled pairs at or above the threshold that ended in one caption cluster."""
    from paircurate.transforms.dedup.near_duplicates import captions_similar

    table = pq.read_table(output / "ledger", columns=["row", "caption_cluster", "caption"])
    cluster = dict(zip(table["row"].to_pylist(), table["caption_cluster"].to_pylist(), strict=True))
    caption = dict(zip(table["row"].to_pylist(), table["caption"].to_pylist(), strict=True))
    above = [(a, b) for a, b in labelled if captions_similar(caption[a], caption[b], 0.8)]
    same = sum(cluster[a] is not None and cluster[a] == cluster[b] for a, b in above)
    return same / max(len(above), 1)


def measure(rows: int, seed: int, folder: Path) -> dict:
    captions, labelled = corpus(rows, seed)
    source = write_input(captions, folder)
    base = run_child(source, folder / "base")
    dedup = run_child(source, folder / "dedup", "--drop-caption-repeats")
    return {
        "rows": rows,
        "job_s": round(dedup["seconds"], 1),
        "baseline_s": round(base["seconds"], 1),
        "dedup_s": round(dedup["seconds"] - base["seconds"], 1),
        "peak_mb": round(dedup["peak_mb"], 1),
        "baseline_peak_mb": round(base["peak_mb"], 1),
        "caption_duplicate": dedup["reason"].get("caption_duplicate", 0),
        "kept": dedup["kept"],
        "largest_bucket": rows // 10,
        "recall": round(labelled_recall(folder / "dedup", labelled), 4),
    }


def datasketch_anchor(rows: int, seed: int) -> float:
    """Seconds for datasketch to sign, insert and query every caption (one process)."""
    from datasketch import MinHash, MinHashLSH

    from paircurate.transforms.dedup.minhash import shingle_hash, shingles

    captions, _ = corpus(rows, seed)
    started = time.perf_counter()
    signatures = MinHash.bulk([shingles(c) for c in captions], num_perm=128, hashfunc=shingle_hash)
    index = MinHashLSH(threshold=0.8, num_perm=128)
    for number, signature in enumerate(signatures):
        index.query(signature)
        index.insert(number, signature)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--small-rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--no-anchor", action="store_true", help="skip the datasketch run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as tmp:
        results = {}
        for rows in (args.small_rows, args.rows):
            folder = Path(tmp, str(rows))
            folder.mkdir()
            results[rows] = measure(rows, args.seed, folder)
            print(json.dumps(results[rows]), flush=True)
    big, small = results[args.rows], results[args.small_rows]
    anchor = None if args.no_anchor else datasketch_anchor(args.rows, args.seed)
    summary = {
        "bench": "dedup",
        "ours": big["dedup_s"],
        "unit": "s",
        "anchor": round(anchor, 1) if anchor is not None else None,
        "ratio": round(anchor / big["dedup_s"], 2) if anchor and big["dedup_s"] > 0 else None,
        "rows": args.rows,
        "job_s": big["job_s"],
        "peak_mb": big["peak_mb"],
        "small_rows": args.small_rows,
        "small_peak_mb": small["peak_mb"],
        "peak_growth": round(big["peak_mb"] / small["peak_mb"], 2),
        "rows_growth": round(args.rows / args.small_rows, 2),
        "recall": big["recall"],
        "caption_duplicate": big["caption_duplicate"],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
