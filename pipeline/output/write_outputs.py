"""The Write stage: final shards, their Parquet, the ledger, sizes.json and stats.json.

Each chunk's decided rows become the shard with the same index: kept images are
copied from the raw shard in key order, so the tar is the same bytes on every
run. Every row of the chunk, kept or not, goes to the chunk's ledger part.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from paircurate.pipeline.progress import BOARD
from paircurate.schemas.codes import Status
from paircurate.schemas.plan import JobPlan
from paircurate.transforms.ingest.inputs import number_repeats
from paircurate.transforms.output import storage
from paircurate.transforms.output.compliance import compliance_summary
from paircurate.transforms.output.finalize import finalize_chunk, split_decisions
from paircurate.transforms.output.indexes import ShardFile
from paircurate.transforms.output.ledger import summarize_shard, with_shares
from paircurate.transforms.output.publish import folder_name, write_card, write_wids_index
from paircurate.transforms.output.shards import TarWriter, sample_members, shard_name
from paircurate.transforms.output.store import OutputLayout, RawStore, image_member, write_parquet

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

    def __init__(self, layout: OutputLayout, raw: RawStore, schema: pa.Schema, plan: JobPlan):
        self.layout = layout
        self.raw = raw
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
        fetched_rows, raw_tar = self.raw.rows_and_tar(chunk) if chunk in fetched else ([], None)
        BOARD.enter("write", len(settled) + len(fetched_rows))
        scores = {record["uid"]: record for record in groups.get("scores", ())}
        decisions, semantic = split_decisions(groups["decisions"])
        final = finalize_chunk(
            # Rows settled before fetching go to a ledger part by uid: every copy of one is here.
            settled=settled,
            fetched=fetched_rows,
            decisions=decisions,
            scores=scores,
            clip=self.plan.clip,
            cut=cut,
            shard=None if self.plan.text_only else name,
            semantic=semantic,
        )
        shard = None
        files, layout = self.layout.files, self.layout
        if self.plan.text_only:
            write_parquet(files, layout.metadata_part(name), final.kept, self.schema)
        else:
            shard = layout.write_shard(name, lambda writer: self._fill(writer, raw_tar, final.kept))
            write_parquet(files, layout.shard_parquet(name), final.kept, self.schema)
            if self.plan.writes_embeddings:
                self._write_embeddings(name, final.kept, scores)
        write_parquet(files, layout.ledger_part(name), final.rows, self.schema)
        if chunk in fetched:
            # Every Fetch attempt is over (this step waits for all of them): tars of
            # attempts the marker does not name can go.
            self.raw.clean(chunk)
        self.samples.inc(len(final.kept))
        BOARD.finish("write", len(final.rows))
        self.write_ms.inc(int((time.perf_counter() - started) * 1000))
        if shard is None:
            yield summarize_shard(name, final.rows, 0)
        else:
            yield summarize_shard(name, final.rows, shard.image_bytes, shard.size)

    def _write_embeddings(self, name: str, kept: list[dict], scores: dict[str, dict]) -> None:
        """img_emb/img_emb_NNNNN.npy and text_emb/text_emb_NNNNN.npy, rows in shard order."""
        for kind in ("image", "text"):
            prefix = "img_emb" if kind == "image" else "text_emb"
            vectors = [
                np.frombuffer(scores[row["uid"]][f"{kind}_embedding"], np.float16) for row in kept
            ]
            array = np.stack(vectors) if vectors else np.zeros((0, 0), np.float16)
            path = self.layout.embeddings(prefix, name)
            storage.write_atomically(
                self.layout.files, path, lambda stream, a=array: np.save(stream, a)
            )

    def _fill(self, writer: TarWriter, raw_tar: str | None, kept: list[dict]) -> int:
        """The final shard from the kept rows' images in ``raw_tar``, the chunk's committed tar;
        returns the bytes of images written."""
        size = 0
        if kept:
            names = [image_member(row["uid"], row["image_format"]) for row in kept]
            for row, (_, image) in zip(kept, self.raw.images(raw_tar, names), strict=True):
                writer.add_all(
                    sample_members(row["key"], image, row["image_format"], row["caption"], row)
                )
                size += len(image)
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


def today() -> str:
    """The UTC date, ISO: when the card was written."""
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def stats_document(summary: dict, run_info: dict) -> dict:
    """stats.json: counts by status and reason with shares, what the run respected (opt-outs
    and removal lists, transforms/output/compliance.py), plus what the run was."""
    rows = summary["rows"]
    kept = summary["status"].get(Status.KEPT.value, 0)
    return {
        "rows_in": rows,
        "kept": kept,
        "status": with_shares(summary["status"], rows),
        "reason": with_shares(summary["reason"], rows),
        "shards": len(summary["shards"]),
        "image_bytes_written": summary["image_bytes"],
        "languages": dict(sorted(summary["languages"].items(), key=lambda i: (-i[1], i[0]))),
        "compliance": compliance_summary(summary["reason"], run_info.get("options") or {}),
        **run_info,
    }


class FinalizeDoFn(beam.DoFn):
    """Write sizes.json, the wids index, stats.json and the dataset card once every part
    exists; clear stale temporaries.

    ``parts`` is the folder of the per-chunk outputs: "shards" (with sizes.json,
    which open_clip reads) or "metadata" for a text-only run; ``schema`` is the
    ledger's, whose columns the card describes.
    """

    def __init__(self, layout: OutputLayout, run_info: dict, parts: str = "shards", schema=None):
        self.layout = layout
        self.run_info = run_info
        self.parts = parts
        self.schema = schema

    def process(
        self, summary: dict, cut: float | None = None, extras: Iterable[dict] = ()
    ) -> Iterator[dict]:
        """``cut``: the score at the --clip-keep-fraction cut, recorded where there is one;
        ``extras``: sections other steps add to stats.json (e.g. "balance")."""
        files, layout = self.layout.files, self.layout
        parts = layout.shards if self.parts == "shards" else layout.metadata
        if self.parts == "shards":
            sizes = {f"{name}.tar": n for name, n in sorted(summary["shards"].items())}
            storage.write_bytes(files, layout.sizes_json, json.dumps(sizes, indent=1).encode())
            tars = summary["tar_bytes"]
            shards = {
                name: ShardFile(n, tars.get(name, 0)) for name, n in summary["shards"].items()
            }
            write_wids_index(layout, shards, folder_name(layout))
        document = stats_document(summary, self.run_info)
        if cut is not None:
            document["clip_keep_fraction_cut"] = cut
        for extra in extras:
            document.update(extra)
        storage.write_bytes(files, layout.stats_json, json.dumps(document, indent=2).encode())
        if self.schema is not None:
            write_card(layout, document, self.schema, today())
        provenance = self.run_info.get("clip_provenance")
        if provenance and self.run_info["options"]["clip"].get("write_embeddings"):
            data = json.dumps(provenance, indent=2).encode()
            storage.write_bytes(files, layout.embeddings_provenance, data)
        for folder in (parts, layout.ledger):
            storage.delete_temporaries(files, folder)
        yield document
