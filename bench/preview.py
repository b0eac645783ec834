"""``paircurate preview`` on large ledgers: wall time and peak memory, against the rerun's rules.

A synthetic run folder is built per size (``--rows``, 1M and 10M by default)
with the real ledger schema, in parts of ``--part-rows`` rows: every status in
realistic shares, eleven languages, CLIP scores, URL repeats pointing at their
kept copy, and caption clusters whose recorded decisions are the job's (a kept
pair, near-duplicates of its image, and pairs with other images), with a
stats.json of its options (``--clip-threshold 0.28``). Building is not timed;
folders are kept in ``--cache`` for the next run.

The preview asks what touches every pass: ``--clip-keep-fraction 0.3`` (the
exact cut), ``--caption-cluster-cap 1`` (every caption cluster decided again)
and ``--languages en,de,fr,es`` (rows dropped, and repeats whose kept copy
goes). Each measurement is a child process of its own, pinned to one CPU
(Arrow's pools at one thread); it reports the seconds of the preview and its
peak resident memory.

The anchor, at the smallest size only, is what a rerun's Decide and Write do
with the same rows: the ledger read whole into Python rows, then per row the
language rule, per caption cluster ``decide_caption_cluster``, per row
``judge_score`` with the cut from the sorted scores, as a Beam worker holds
its rows (in one process, without Beam, shards, downloads or the rescoring a
real rerun also does: a lower bound of the rerun's cost, which at a million
rows is not feasible here since it needs a million images). The real rerun at
the test web's size is measured by the pipeline tests' reruns. Anchor and
preview alternate, ``--repeats`` times each; medians and ranges are given.

Last line: one JSON object (bench convention).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from memory import IMPORTABLE

from paircurate.schemas.records import ledger_schema
from report import LANGUAGES, captions, hex_ids  # bench/report.py's ledger pieces

PREVIEW = ("--clip-keep-fraction", "0.3", "--caption-cluster-cap", "1",
           "--languages", "en,de,fr,es")  # fmt: skip
THRESHOLD = 0.28
# reason -> share of rows; clusters and CLIP drops are made apart.
SHARES = {"caption_too_short": 0.03, "caption_junk": 0.01, "url_duplicate": 0.05,
          "download_http_404": 0.05, "download_timeout": 0.02, "image_too_small": 0.03}  # fmt: skip
CLUSTERED = 0.12  # share of downloaded rows in a caption cluster
PINNED = """
import os
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
import pyarrow as pa
pa.set_cpu_count(1)
pa.set_io_thread_count(1)
"""
PREVIEW_CHILD = (
    IMPORTABLE
    + PINNED
    + """
import json, sys, time, contextlib, io
started = time.perf_counter()
from memory import peak_rss_mb
from paircurate.pipeline import cli, filesystem
imported = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()) as out:
    assert cli.main(["preview", sys.argv[1], "--json", *sys.argv[2:]]) == 0
document = json.loads(out.getvalue())
print(json.dumps({"seconds": time.perf_counter() - imported, "peak_rss_mb": peak_rss_mb(),
                  "import_seconds": imported - started,
                  "kept": document["status"]["kept"]["preview"], "exact": document["exact"]}))
"""
)
ANCHOR_CHILD = (
    IMPORTABLE
    + PINNED
    + """
import json, sys, time
from memory import peak_rss_mb
from preview import rows_as_dicts_anchor
import paircurate.transforms.dedup.decide, paircurate.transforms.scoring.clip_filter
started = time.perf_counter()
kept = rows_as_dicts_anchor(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(),
                  "kept": kept}))
"""
)


def ledger_part(rng: np.random.Generator, chunk: int, n: int, first: int) -> pa.Table:
    """One part of a run with --clip-threshold 0.28 and the pair rule, decisions as the job's."""
    index = np.arange(first, first + n)
    codes = np.array(["", *SHARES])
    reason = codes[rng.choice(codes.size, n, p=[1 - sum(SHARES.values()), *SHARES.values()])]
    downloaded = (reason == "") | (reason == "image_too_small")
    scored = reason == ""
    uid = hex_ids(index).to_numpy(zero_copy_only=False)
    # URL repeats point at an earlier row of the part, their kept copy.
    repeat = reason == "url_duplicate"
    duplicate_of = np.full(n, None, dtype=object)
    duplicate_of[repeat] = uid[np.maximum(np.flatnonzero(repeat) - 1 - rng.integers(0, 5), 0)]
    width = rng.integers(200, 1200, n)
    clusters = _clusters(rng, scored, uid, width, duplicate_of)
    reason = np.where(clusters["near"], "near_duplicate", reason)
    scores = rng.normal(0.3, 0.06, n).astype(np.float32)
    reason = np.where((reason == "") & (scores < THRESHOLD), "clip_below_threshold", reason)
    language = np.array(list(LANGUAGES))[rng.choice(len(LANGUAGES), n, p=list(LANGUAGES.values()))]
    status = np.where(
        reason == "", "kept", np.where(reason == "download_timeout", "failed", "dropped")
    )
    status = np.where(reason == "download_http_404", "failed", status)
    phash = rng.integers(0, 1 << 62, n)
    columns = {
        "uid": pa.array(uid),
        "url": pc.binary_join_element_wise("https://img.example.com/", pa.array(uid), ".jpg", ""),
        "caption": captions(rng, n),
        "language": pa.array(language),
        "status": pa.array(status),
        "reason": pa.array(np.where(reason == "", None, reason), pa.string()),
        "duplicate_of": pa.array(duplicate_of, pa.string()),
        "cluster_id": pa.array(clusters["pair_keeper"], pa.string()),
        "caption_cluster": pa.array(clusters["root"], pa.string()),
        "image_cluster": pa.array(clusters["image_root"], pa.string()),
        "chunk": pa.array(np.full(n, chunk), pa.int32()),
        "original_width": pa.array(np.where(downloaded, width, None), pa.int32()),
        "original_height": pa.array(np.where(downloaded, 100, None), pa.int32()),
        "phash": pa.array([f"{value:016x}" for value in phash.tolist()]),
        "image_format": pa.array(np.where(scored, "jpg", None), pa.string()),
        "clip_score": pa.array(np.where(scored, scores, None), pa.float32()),
    }
    schema = ledger_schema()
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _clusters(rng, scored, uid, width, duplicate_of) -> dict[str, np.ndarray]:
    """Caption clusters of 2-6 consecutive scored rows: the first (largest image) is kept,
    about half of the others show its image (near-duplicates of it), the rest other images."""
    n = uid.size
    found = {name: np.full(n, None, dtype=object) for name in ("root", "image_root", "pair_keeper")}
    found["near"] = np.zeros(n, dtype=bool)
    members = np.flatnonzero(scored & (rng.random(n) < CLUSTERED))
    start = 0
    while start + 1 < members.size:
        size = int(rng.integers(2, 7))
        group = members[start : start + size]
        start += size
        if group.size < 2:
            break
        keeper = group[0]
        width[keeper] = 5000  # the largest image: the keeper by the job's rule
        found["root"][group] = uid[keeper]
        near = group[1:][rng.random(group.size - 1) < 0.5]
        if near.size:
            found["image_root"][[keeper, *near]] = uid[keeper]
            found["pair_keeper"][[keeper, *near]] = uid[keeper]
            found["near"][near] = True
            duplicate_of[near] = uid[keeper]
    return found


def build_run(folder: Path, rows: int, part_rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    (folder / "ledger").mkdir(parents=True)
    status: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for chunk, first in enumerate(range(0, rows, part_rows)):
        table = ledger_part(rng, chunk, min(part_rows, rows - first), first)
        pq.write_table(table, folder / "ledger" / f"part-{chunk:05d}.parquet")
        for name, counts in (("status", status), ("reason", reasons)):
            for entry in pc.value_counts(table[name].drop_null()).to_pylist():
                counts[entry["values"]] = counts.get(entry["values"], 0) + entry["counts"]
    options = {
        "clip": {"clip_model": "ViT-B-32", "clip_threshold": THRESHOLD},
        "output": {"output": str(folder)},
        "inputs": {"input": ["bench.parquet"]},
    }
    stats = {
        "rows_in": rows,
        "kept": status.get("kept", 0),
        "status": {key: {"count": n} for key, n in status.items()},
        "reason": {key: {"count": n} for key, n in reasons.items()},
        "options": options,
    }
    (folder / "stats.json").write_text(json.dumps(stats))


def cached_run(cache: Path, rows: int, part_rows: int, seed: int) -> Path:
    folder = cache / f"preview-{rows}-{part_rows}-{seed}"
    if not (folder / "stats.json").exists():
        started = time.perf_counter()
        build_run(folder, rows, part_rows, seed)
        print(f"built {folder} in {time.perf_counter() - started:.1f} s", flush=True)
    return folder


def rows_as_dicts_anchor(folder: str) -> int:
    """The rerun's rules over every ledger row as a Python row; returns the rows kept."""
    from paircurate.schemas.config import CaptionConfig, ClipConfig, DedupConfig
    from paircurate.transforms.dedup.decide import decide_caption_cluster, ledger_member
    from paircurate.transforms.scoring.clip_filter import cut_rank, judge_score

    columns = ["uid", "chunk", "reason", "language", "clip_score", "caption_cluster",
               "image_cluster", "duplicate_of", "original_width", "original_height",
               "phash"]  # fmt: skip
    rows = pq.read_table(Path(folder) / "ledger", columns=columns).to_pylist()
    languages = CaptionConfig(languages=("en", "de", "fr", "es"))
    clip = ClipConfig(clip_threshold=THRESHOLD, clip_keep_fraction=0.3)
    dedup = DedupConfig(caption_cluster_cap=1)
    before = {"caption_too_short", "caption_junk"}
    live = [r for r in rows if r["reason"] in before or languages.keeps_language(r["language"])]
    scores = sorted(r["clip_score"] for r in live if r["clip_score"] is not None)
    cut = scores[cut_rank(len(scores), 0.3)]
    clusters: dict[str, list[dict]] = {}
    kept = 0
    for row in live:
        if row["reason"] in before:
            continue
        if row["caption_cluster"] is not None:
            clusters.setdefault(row["caption_cluster"], []).append(row)
        elif row["reason"] in (None, "clip_below_threshold"):
            kept += judge_score({**row, "reason": None}, clip, cut).get("reason") is None
    for members in clusters.values():
        by_uid = {row["uid"]: row for row in members}
        for decision in decide_caption_cluster([ledger_member(r) for r in members], dedup):
            if decision["reason"] is None:
                row = {**by_uid[decision["uid"]], "reason": None}
                kept += judge_score(row, clip, cut).get("reason") is None
    return kept


def child(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(runs: list[dict]) -> dict:
    seconds = [run["seconds"] for run in runs]
    memory = [run["peak_rss_mb"] for run in runs]
    return {
        "seconds_median": round(statistics.median(seconds), 2),
        "seconds_range": [round(min(seconds), 2), round(max(seconds), 2)],
        "peak_rss_mb_median": round(statistics.median(memory), 1),
        "peak_rss_mb_range": [round(min(memory), 1), round(max(memory), 1)],
        "runs": len(runs),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--part-rows", type=int, default=100_000, help="rows per ledger part")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "paircurate" / "bench"))
    parser.add_argument("--no-anchor", dest="anchor", action="store_false")
    args = parser.parse_args(argv)
    cache = Path(args.cache)
    result: dict = {"bench": "preview", "options": " ".join(PREVIEW), "sizes": {}}
    for size_index, rows in enumerate(sorted(args.rows)):
        folder = cached_run(cache, rows, args.part_rows, args.seed)
        previews, anchors = [], []
        for _ in range(args.repeats):
            previews.append(child(PREVIEW_CHILD, str(folder), *PREVIEW))
            print(json.dumps({"rows": rows, "preview": previews[-1]}), flush=True)
            if args.anchor and size_index == 0:
                anchors.append(child(ANCHOR_CHILD, str(folder)))
                print(json.dumps({"rows": rows, "anchor": anchors[-1]}), flush=True)
        entry = {"preview": summary(previews), "exact": all(p["exact"] for p in previews)}
        if anchors:
            if {a["kept"] for a in anchors} != {p["kept"] for p in previews}:
                raise RuntimeError(f"the anchor keeps {anchors[0]['kept']}, preview {previews}")
            entry["anchor"] = summary(anchors)
            entry["kept"] = anchors[0]["kept"]
            ratios = [a["seconds"] / p["seconds"] for a, p in zip(anchors, previews, strict=True)]
            entry["anchor_over_preview_seconds_median"] = round(statistics.median(ratios), 2)
            entry["anchor_over_preview_seconds_range"] = [
                round(min(ratios), 2),
                round(max(ratios), 2),
            ]
            memory = entry["anchor"]["peak_rss_mb_median"] / entry["preview"]["peak_rss_mb_median"]
            entry["anchor_over_preview_peak_memory"] = round(memory, 2)
        result["sizes"][str(rows)] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()
