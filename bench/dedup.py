"""The caption dedup stage at scale: wall time and peak memory on the local runner.

Corpus (``--rows`` captions, 200,000 by default, 20 % duplicates):

* distinct captions: pairs of Conceptual Captions validation captions joined by
  " ; " (15,833 real captions give 250 million distinct joins), so the
  corpus is real text with the length of long alt-texts;
* 10 % one boilerplate caption repeated (20,000 rows at 200,000): the huge
  bucket that must stay a star;
* 10 % edited copies of distinct captions (case, punctuation, a word added or
  dropped, a suffix such as " - stock photo"), each a labelled near-duplicate.

Every row has its own URL, so nothing is a URL duplicate. Each measurement of
ours is a whole text-only job (read, caption stage, chunk commit, Decide,
Write) in a child process, with ``--drop-caption-repeats``; the same job without
it (no Decide step) is the baseline, so ``dedup_s`` is the stage's own share.
Peak memory is the child's maximum RSS.

Anchor: datasketch ``MinHashLSH`` (128 permutations, the job's banding of 16
bands x 7 rows, so that both index the same band keys) inserting and querying
the same captions in one process, its signatures made by ``MinHash.bulk`` with
C xxhash's ``xxh32_intdigest`` (datasketch's documented fast path). It verifies
nothing and builds no clusters; its ``anchor_recall`` is the share of the same
labelled pairs (those at or above Jaccard 0.8) that its queries return.

* The headline (``ratio`` = the anchor's median seconds / our dedup stage's)
  is measured on the corpus without the repeated caption (180,000 rows at
  200,000), ``--runs`` times (3 by default), ours and the anchor alternating,
  medians kept.
* ``with_repeated_caption``: both once on the whole corpus. datasketch's
  bucket walk is quadratic in the repeated caption's 20,000 copies (each query
  returns every earlier copy), so this figure says more about that bucket than
  about the rest.
* The whole corpus is also run at ``--small-rows`` (50,000 by default) to show
  how our memory grows with the input and the largest bucket (5,000 then 20,000
  rows).

Last line: one JSON object (bench convention).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from memory import IMPORTABLE
from minhash import EDIT_KINDS, edit
from shared_data import cc3m_captions

BOILERPLATE = "Stock photo - image not available"

CHILD = (
    IMPORTABLE
    + """
import json, sys, time
from memory import peak_rss_mb
from paircurate.pipeline.run import run
started = time.perf_counter()
stats = run(sys.argv[1:])
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_mb": peak_rss_mb(),
                  "reason": {k: v["count"] for k, v in stats["reason"].items()},
                  "kept": stats["kept"]}))
"""
)


def corpus(rows: int, seed: int, repeated: bool = True) -> tuple[list[str], list[tuple[int, int]]]:
    """Captions, and the labelled (original, edited copy) row pairs.

    ``repeated=False`` leaves out the copies of the boilerplate caption, and only them.
    """
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
    if repeated:
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


def measure(captions: list[str], labelled: list[tuple[int, int]], folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    source = write_input(captions, folder)
    base = run_child(source, folder / "base")
    dedup = run_child(source, folder / "dedup", "--drop-caption-repeats")
    return {
        "rows": len(captions),
        "job_s": round(dedup["seconds"], 1),
        "baseline_s": round(base["seconds"], 1),
        "dedup_s": round(dedup["seconds"] - base["seconds"], 1),
        "peak_mb": round(dedup["peak_mb"], 1),
        "baseline_peak_mb": round(base["peak_mb"], 1),
        "caption_duplicate": dedup["reason"].get("caption_duplicate", 0),
        "kept": dedup["kept"],
        "recall": round(labelled_recall(folder / "dedup", labelled), 4),
    }


def datasketch_anchor(captions: list[str], labelled: list[tuple[int, int]]) -> dict:
    """Seconds for datasketch to sign, insert and query every caption (one process), and
    the share of the labelled pairs at or above the threshold that its queries return."""
    import xxhash
    from datasketch import MinHash, MinHashLSH

    from paircurate.schemas.config import DedupConfig
    from paircurate.transforms.dedup.minhash import shingles
    from paircurate.transforms.dedup.near_duplicates import captions_similar

    config = DedupConfig()
    watched = {max(a, b) for a, b in labelled}
    returned: dict[int, set] = {}
    started = time.perf_counter()
    signatures = MinHash.bulk(
        [shingles(c) for c in captions], num_perm=128, hashfunc=xxhash.xxh32_intdigest
    )
    index = MinHashLSH(num_perm=128, params=(config.minhash_bands, config.minhash_rows))
    for number, signature in enumerate(signatures):
        found = index.query(signature)
        if number in watched:
            returned[number] = set(found)
        index.insert(number, signature)
    seconds = time.perf_counter() - started
    above = [
        (min(a, b), max(a, b))
        for a, b in labelled
        if captions_similar(captions[a], captions[b], config.caption_threshold)
    ]
    recall = sum(a in returned[b] for a, b in above) / max(len(above), 1)
    return {"seconds": seconds, "recall": recall}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--small-rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="headline runs (medians kept)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as tmp:
        whole = {}
        for rows in (args.small_rows, args.rows):
            whole[rows] = measure(*corpus(rows, args.seed), Path(tmp, f"whole-{rows}"))
            print(json.dumps(whole[rows]), flush=True)
        with_repeated = datasketch_anchor(*corpus(args.rows, args.seed))
        print(json.dumps({"anchor_with_repeated_caption": with_repeated}), flush=True)
        captions, labelled = corpus(args.rows, args.seed, repeated=False)
        ours, anchor = [], []
        for run in range(args.runs):
            ours.append(measure(captions, labelled, Path(tmp, f"headline-{run}")))
            anchor.append(datasketch_anchor(captions, labelled))
            print(json.dumps({"run": run + 1, "ours": ours[-1], "anchor": anchor[-1]}), flush=True)
    ours_s = statistics.median(m["dedup_s"] for m in ours)
    anchor_s = statistics.median(m["seconds"] for m in anchor)
    big, small = whole[args.rows], whole[args.small_rows]
    summary = {
        "bench": "dedup",
        "ours": ours_s,
        "unit": "s",
        "anchor": round(anchor_s, 1),
        "anchor_config": "datasketch MinHashLSH params=(16, 7), MinHash.bulk with xxh32_intdigest",
        "ratio": round(anchor_s / ours_s, 2) if ours_s > 0 else None,
        "rows": len(captions),
        "runs": args.runs,
        "job_s": statistics.median(m["job_s"] for m in ours),
        "recall": statistics.median(m["recall"] for m in ours),
        "anchor_recall": round(statistics.median(m["recall"] for m in anchor), 4),
        "with_repeated_caption": {
            "rows": args.rows,
            "repeated_copies": args.rows // 10,
            "ours": big["dedup_s"],
            "anchor": round(with_repeated["seconds"], 1),
            "ratio": round(with_repeated["seconds"] / big["dedup_s"], 2)
            if big["dedup_s"] > 0
            else None,
            "recall": big["recall"],
            "anchor_recall": round(with_repeated["recall"], 4),
            "caption_duplicate": big["caption_duplicate"],
        },
        "peak_mb": big["peak_mb"],
        "small_rows": args.small_rows,
        "small_peak_mb": small["peak_mb"],
        "peak_growth": round(big["peak_mb"] / small["peak_mb"], 2),
        "rows_growth": round(args.rows / args.small_rows, 2),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
