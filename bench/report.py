"""The quality report on a large run: wall time and peak memory of ``paircurate report``.

A synthetic run folder is built with the real ledger schema: ``--rows`` rows
(1,000,000 by default; give several sizes to compare them) in ledger parts of
``--shard-rows`` rows, every status and reason in realistic shares, CLIP
scores, languages, caption lengths, original sizes and duplicate clusters; a
matching stats.json (counts, options with LAION's per-language thresholds,
stage timings); and, unless ``--no-images``, the final shard tars with a small
JPEG for every kept sample plus raw shards under ``fetch/`` for the dropped
pairs that had an image, so the thumbnails are read as in a real run. Building
the folder is not timed.

The report then runs in a child process of its own for each size, pinned to
one CPU (Arrow's thread pools set to one thread), as ``paircurate report DIR``
would; the child reports its wall time and its peak resident memory. The
anchor is the smallest size: the last line gives each larger size's peak
memory as a ratio of it (flat memory gives 1.0).

Last line: one JSON object (bench convention).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from memory import IMPORTABLE
from PIL import Image

from paircurate.schemas.codes import REASONS
from paircurate.schemas.records import ledger_schema

# reason -> share of rows; the rest is kept.
REASON_SHARES = {
    "caption_too_short": 0.02, "caption_junk": 0.01, "caption_filename": 0.01, "language": 0.02,
    "url_duplicate": 0.05, "download_http_404": 0.04, "download_timeout": 0.02,
    "download_http_5xx": 0.01, "download_connection_error": 0.01, "image_decode_error": 0.005,
    "image_too_small": 0.03, "image_aspect_ratio": 0.01, "near_duplicate": 0.06,
    "clip_below_threshold": 0.12,
}  # fmt: skip
LANGUAGES = {"en": 0.55, "de": 0.1, "fr": 0.08, "es": 0.08, "it": 0.04, "nl": 0.03, "pt": 0.03,
             "ja": 0.02, "zh": 0.02, "ru": 0.02, "nolang": 0.03}  # fmt: skip
WORDS = np.array(
    "a the photo of red blue small large dog cat house tree on in with beside garden street "
    "city mountain lake wooden table chair vintage modern stock illustration portrait".split()
)
AFTER_DOWNLOAD = {"image_too_small", "image_aspect_ratio", "near_duplicate", "clip_below_threshold"}
SCORED = {"near_duplicate", "clip_below_threshold"}

CHILD = (
    IMPORTABLE
    + """
import json, os, sys, time
from memory import peak_rss_mb
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
import pyarrow as pa
pa.set_cpu_count(1)
pa.set_io_thread_count(1)
from paircurate.pipeline.output.write_report import write_report
started = time.perf_counter()
path = write_report(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - started, "bytes": os.path.getsize(path),
                  "peak_rss_mb": peak_rss_mb()}))
"""
)


def hex_ids(values: np.ndarray) -> pa.Array:
    """32-hex-digit ids from integers, the shape of uids."""
    text = pc.cast(pa.array(values.astype(np.int64)), pa.string())
    return pc.utf8_lpad(text, 32, "0")


def captions(rng: np.random.Generator, n: int) -> pa.Array:
    """Captions of 3-16 words drawn from a small vocabulary, built without a row loop."""
    lengths = rng.integers(3, 17, n)
    words = WORDS[rng.integers(0, WORDS.size, lengths.sum())]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(words))
    return pc.binary_join(lists, " ")


def ledger_part(rng: np.random.Generator, chunk: int, n: int, first: int, threshold: float):
    """One chunk's ledger rows as a table of the real ledger schema."""
    codes = np.array(["", *REASON_SHARES])
    shares = np.array([1 - sum(REASON_SHARES.values()), *REASON_SHARES.values()])
    reason = codes[rng.choice(codes.size, n, p=shares)]
    status = np.where(reason == "", "kept", "dropped").astype(object)
    for code in REASON_SHARES:
        status[reason == code] = REASONS[code].status.value
    kept = reason == ""
    downloaded = kept | np.isin(reason, list(AFTER_DOWNLOAD))
    scored = kept | np.isin(reason, list(SCORED))
    scores = np.where(kept, rng.uniform(threshold, 0.45, n), rng.normal(0.24, 0.05, n))
    width = rng.lognormal(6.2, 0.5, n).astype(np.int32)
    height = (width * rng.choice([0.56, 0.75, 1.0, 1.33, 1.5, 5.0], n)).astype(np.int32)
    index = np.arange(first, first + n)
    uid = hex_ids(index)
    in_cluster = (reason == "near_duplicate") | (kept & (rng.random(n) < 0.05))
    cluster = hex_ids(rng.zipf(1.8, n) % 50_000)
    keys = pa.array(np.where(kept, uid.to_numpy(zero_copy_only=False), None), pa.string())
    language = np.array(list(LANGUAGES))[rng.choice(len(LANGUAGES), n, p=list(LANGUAGES.values()))]
    columns = {
        "uid": uid,
        "url": pc.binary_join_element_wise("https://img.example.com/", uid, ".jpg", ""),
        "caption": captions(rng, n),
        "language": pa.array(language),
        "language_score": pa.array(rng.uniform(0.5, 1.0, n), pa.float32()),
        "row_number": pa.array(index, pa.int64()),
        "status": pa.array(status),
        "reason": pa.array(np.where(kept, None, reason), pa.string()),
        "cluster_id": pc.if_else(pa.array(in_cluster), cluster, None),
        "caption_cluster": pc.if_else(pa.array(in_cluster), cluster, None),
        "image_cluster": pc.if_else(pa.array(in_cluster), cluster, None),
        "chunk": pa.array(np.full(n, chunk), pa.int32()),
        "shard": pa.array(np.where(kept, f"{chunk:05d}", None), pa.string()),
        "key": keys,
        "original_width": pa.array(np.where(downloaded, width, None), pa.int32()),
        "original_height": pa.array(np.where(downloaded, height, None), pa.int32()),
        "image_format": pa.array(np.where(scored, "jpg", None), pa.string()),
        "clip_score": pa.array(np.where(scored, scores, None), pa.float32()),
    }
    schema = ledger_schema()
    arrays = [
        columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema
    ]  # fmt: skip
    return pa.Table.from_arrays(arrays, schema=schema)


def write_images(path: Path, names: list[str], image: bytes) -> None:
    """A tar of ``names``, each the same small JPEG: what the report's thumbnails read."""
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = len(image)
            tar.addfile(info, io.BytesIO(image))


def build_run(folder: Path, rows: int, shards: int, images: bool, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    threshold = 0.28
    pixel = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 120, 160)).save(pixel, "JPEG", quality=80)
    for folder_name in ("ledger", "shards", "fetch/bench"):
        (folder / folder_name).mkdir(parents=True)
    status_counts: dict[str, int] = {}
    reason_counts: dict[str, int] = {}
    per_shard = -(-rows // shards)
    for chunk in range(shards):
        first = chunk * per_shard
        n = min(per_shard, rows - first)
        table = ledger_part(rng, chunk, n, first, threshold)
        pq.write_table(table, folder / "ledger" / f"part-{chunk:05d}.parquet")
        kept = table.filter(pc.equal(table["status"], "kept"))
        pq.write_table(kept, folder / "shards" / f"{chunk:05d}.parquet")
        for name, counts in (("status", status_counts), ("reason", reason_counts)):
            for entry in pc.value_counts(table[name].drop_null()).to_pylist():
                counts[entry["values"]] = counts.get(entry["values"], 0) + entry["counts"]
        if images:
            keys = sorted(kept["key"].to_pylist())
            write_images(
                folder / "shards" / f"{chunk:05d}.tar", [f"{k}.jpg" for k in keys], pixel.getvalue()
            )
            with_image = table.filter(pc.is_valid(table["image_format"]))["uid"].to_pylist()
            names = [f"{uid}.jpg" for uid in sorted(with_image)]
            write_images(folder / "fetch" / "bench" / f"{chunk:05d}.tar", names, pixel.getvalue())
    stats = stats_document(rows, status_counts, reason_counts, shards, threshold)
    (folder / "stats.json").write_text(json.dumps(stats, indent=2))
    return stats


def stats_document(rows: int, status: dict, reason: dict, shards: int, threshold: float) -> dict:
    def with_shares(counts: dict) -> dict:
        ordered = sorted(counts.items(), key=lambda item: -item[1])
        return {key: {"count": n, "share": round(n / rows, 6)} for key, n in ordered}

    return {
        "rows_in": rows,
        "kept": status.get("kept", 0),
        "status": with_shares(status),
        "reason": with_shares(reason),
        "shards": shards,
        "image_bytes_written": 0,
        "options": {
            "clip": {
                "clip_model": "ViT-B-32",
                "clip_threshold": threshold,
                "clip_threshold_by_lang": ["en=0.28", "default=0.26"],
                "clip_keep_fraction": None,
            },
            "image": {"min_image_size": 128, "max_aspect_ratio": 3.0},
            "output": {"output": "bench", "shard_size": rows // shards, "text_only": False},
        },  # fmt: skip
        "versions": {"paircurate": "bench"},
        "duration_s": 3600.0,
        "rows_per_s": round(rows / 3600.0, 1),
        "stages": {
            name: {"rows": rows, "busy_s": busy, "rows_per_busy_s": round(rows / busy, 1)}
            for name, busy in (
                ("read", 20.0),
                ("caption", 30.0),
                ("fetch", 9000.0),
                ("write", 400.0),
            )
        },  # fmt: skip
    }


def measure(rows: int, shard_rows: int, images: bool, seed: int, tmp: str) -> dict:
    """Build a run of ``rows`` rows and time the report on it in a child process of its own."""
    folder = Path(tmp, f"run-{rows}")
    shards = max(1, -(-rows // shard_rows))
    started = time.perf_counter()
    build_run(folder, rows, shards, images, seed)
    print(f"built a {rows}-row run in {time.perf_counter() - started:.1f} s", flush=True)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, check=False
    )
    shutil.rmtree(folder)
    if done.returncode != 0:
        raise RuntimeError(f"report failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    line = {
        "rows": rows,
        "seconds": round(result["seconds"], 2),
        "rows_per_s": round(rows / result["seconds"]),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "report_mb": round(result["bytes"] / 1e6, 2),
        "shards": shards,
    }
    print(json.dumps(line), flush=True)
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--shard-rows", type=int, default=10_000, help="rows per ledger part")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-images",
        dest="images",
        action="store_false",
        help="write no tars: the report's sample grids go without thumbnails",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        lines = [measure(rows, args.shard_rows, args.images, args.seed, tmp) for rows in args.rows]
    anchor, last = lines[0], lines[-1]
    summary = {
        "bench": "report",
        "ours": last["seconds"],
        "unit": "s",
        "rows": last["rows"],
        "rows_per_s": last["rows_per_s"],
        "peak_rss_mb": {line["rows"]: line["peak_rss_mb"] for line in lines},
        "anchor": f"peak memory at {anchor['rows']} rows",
        "peak_ratio": round(last["peak_rss_mb"] / anchor["peak_rss_mb"], 3),
        "report_mb": last["report_mb"],
        "shard_rows": args.shard_rows,
        "images": args.images,
        "cpus": 1,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
