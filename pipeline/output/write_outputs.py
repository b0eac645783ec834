"""The Write stage: final shards, their Parquet, the ledger, sizes.json and stats.json.

Each chunk's decided rows become the shard with the same index: kept images are
copied from the raw shard in key order, so the tar is the same bytes on every
run. Every row of the chunk, kept or not, goes to the chunk's ledger part.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.crawl.fetch_chunks import (
    image_member,
    raw_paths,
    read_raw_rows,
    write_parquet,
)
from paircurate.pipeline.progress import BOARD
from paircurate.schemas.codes import Status
from paircurate.schemas.plan import JobPlan
from paircurate.transforms.ingest.inputs import number_repeats
from paircurate.transforms.output.finalize import finalize_chunk
from paircurate.transforms.output.ledger import summarize_shard
from paircurate.transforms.output.shards import TarWriter, read_members, sample_members, shard_name

log = logging.getLogger(__name__)


class WriteShardDoFn(beam.DoFn):
    """(chunk, {"settled", "decisions", "scores"}) -> a summary, once the outputs exist.

    The rows that went through Fetch come from the chunk's raw Parquet, the
    cluster decisions from the Decide step, the CLIP scores from the Score step
    (``cut`` is the score at the top-fraction cut); ``finalize_chunk`` turns
    them into the chunk's final rows, by the rules of ``plan``. A text-only
    run writes DIR/metadata/part-NNNNN.parquet instead of a shard: the rows
    that survived, ready to be fetched later.
    """

    def __init__(self, output_dir: str, raw_dir: str, schema: pa.Schema, plan: JobPlan):
        self.output_dir = output_dir
        self.raw_dir = raw_dir
        self.schema = schema
        self.plan = plan
        self.samples = Metrics.counter("paircurate", "write_samples")
        self.write_ms = Metrics.counter("paircurate", "write_ms")

    def process(
        self, element: tuple[int, dict], fetched: dict[int, bool], cut: float | None = None
    ) -> Iterator[dict]:
        started = time.perf_counter()
        chunk, groups = element
        name = shard_name(chunk)
        settled = number_repeats(row for settled in groups["settled"] for row in settled)
        fetched_rows = read_raw_rows(self.raw_dir, chunk) if chunk in fetched else []
        BOARD.enter("write", len(settled) + len(fetched_rows))
        scores = {record["uid"]: record for record in groups.get("scores", ())}
        final = finalize_chunk(
            # Rows settled before fetching go to a ledger part by uid: every copy of one is here.
            settled=settled,
            fetched=fetched_rows,
            decisions={decision["uid"]: decision for decision in groups["decisions"]},
            scores=scores,
            clip=self.plan.clip,
            cut=cut,
            shard=None if self.plan.text_only else name,
        )
        tar_bytes = 0
        if self.plan.text_only:
            part = fs.join(self.output_dir, "metadata", f"part-{name}.parquet")
            write_parquet(part, final.kept, self.schema)
        else:
            shards = fs.join(self.output_dir, "shards")
            tar_bytes = fs.write_atomically(
                fs.join(shards, f"{name}.tar"),
                lambda stream: self._write_tar(stream, chunk, final.kept),
            )
            write_parquet(fs.join(shards, f"{name}.parquet"), final.kept, self.schema)
            if self.plan.writes_embeddings:
                self._write_embeddings(name, final.kept, scores)
        ledger = fs.join(self.output_dir, "ledger", f"part-{name}.parquet")
        write_parquet(ledger, final.rows, self.schema)
        self.samples.inc(len(final.kept))
        BOARD.finish("write", len(final.rows))
        self.write_ms.inc(int((time.perf_counter() - started) * 1000))
        yield summarize_shard(name, final.rows, tar_bytes)

    def _write_embeddings(self, name: str, kept: list[dict], scores: dict[str, dict]) -> None:
        """img_emb/img_emb_NNNNN.npy and text_emb/text_emb_NNNNN.npy, rows in shard order."""
        folder = fs.join(self.output_dir, "embeddings")
        for kind in ("image", "text"):
            prefix = "img_emb" if kind == "image" else "text_emb"
            vectors = [
                np.frombuffer(scores[row["uid"]][f"{kind}_embedding"], np.float16) for row in kept
            ]
            array = np.stack(vectors) if vectors else np.zeros((0, 0), np.float16)
            path = fs.join(folder, prefix, f"{prefix}_{name}.npy")
            fs.write_atomically(path, lambda stream, a=array: np.save(stream, a))

    def _write_tar(self, stream, chunk: int, kept: list[dict]) -> int:
        writer = TarWriter(stream)
        size = 0
        if kept:
            raw_tar, _ = raw_paths(self.raw_dir, chunk)
            names = [image_member(row["uid"], row["image_format"]) for row in kept]
            with fs.open_read(raw_tar) as raw:
                for row, (_, image) in zip(kept, read_members(raw, names), strict=True):
                    writer.add_all(
                        sample_members(row["key"], image, row["image_format"], row["caption"], row)
                    )
                    size += len(image)
        writer.close()
        return size


class MergeSummariesFn(beam.CombineFn):
    """Merge per-shard summaries into the run's counts, without the ledger in one place."""

    def create_accumulator(self) -> dict:
        from paircurate.transforms.output.ledger import empty_summary

        return empty_summary()

    def add_input(self, accumulator: dict, summary: dict) -> dict:
        return self.merge_accumulators([accumulator, summary])

    def merge_accumulators(self, accumulators: Iterable[dict]) -> dict:
        from paircurate.transforms.output.ledger import merge_summaries

        return merge_summaries(accumulators)

    def extract_output(self, accumulator: dict) -> dict:
        return accumulator


def stats_document(summary: dict, run_info: dict) -> dict:
    """stats.json: counts by status and reason with shares, plus what the run was."""
    rows = summary["rows"]

    def with_shares(counts: dict) -> dict:
        return {
            key: {"count": n, "share": round(n / rows, 6) if rows else 0.0}
            for key, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        }

    kept = summary["status"].get(Status.KEPT.value, 0)
    return {
        "rows_in": rows,
        "kept": kept,
        "status": with_shares(summary["status"]),
        "reason": with_shares(summary["reason"]),
        "shards": len(summary["shards"]),
        "image_bytes_written": summary["image_bytes"],
        **run_info,
    }


class FinalizeDoFn(beam.DoFn):
    """Write sizes.json and stats.json once every part exists; clear stale temporaries.

    ``parts`` is the folder of the per-chunk outputs: "shards" (with sizes.json,
    which open_clip reads) or "metadata" for a text-only run.
    """

    def __init__(self, output_dir: str, run_info: dict, parts: str = "shards"):
        self.output_dir = output_dir
        self.run_info = run_info
        self.parts = parts

    def process(self, summary: dict, cut: float | None = None) -> Iterator[dict]:
        """``cut``: the score at the --clip-keep-fraction cut, recorded where there is one."""
        parts = fs.join(self.output_dir, self.parts)
        if self.parts == "shards":
            sizes = {f"{name}.tar": n for name, n in sorted(summary["shards"].items())}
            fs.write_bytes(fs.join(parts, "sizes.json"), json.dumps(sizes, indent=1).encode())
        document = stats_document(summary, self.run_info)
        if cut is not None:
            document["clip_keep_fraction_cut"] = cut
        fs.write_bytes(
            fs.join(self.output_dir, "stats.json"), json.dumps(document, indent=2).encode()
        )
        for folder in (parts, fs.join(self.output_dir, "ledger")):
            fs.delete_temporaries(folder)
        yield document
