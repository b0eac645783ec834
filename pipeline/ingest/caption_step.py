"""The Caption stage in Beam: batches of rows through normalisation, rules and language id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from paircurate.pipeline.progress import BOARD
from paircurate.schemas.config import CaptionConfig
from paircurate.transforms.ingest.caption_stage import CaptionStage
from paircurate.transforms.ingest.langid import make_detector


class CaptionStageDoFn(beam.DoFn):
    """A batch of rows in, the same rows out with caption measurements and verdicts."""

    def __init__(self, config: CaptionConfig):
        self.config = config
        self.rows = Metrics.counter("paircurate", "caption_rows")
        self.caption_ms = Metrics.counter("paircurate", "caption_ms")
        self.stage: CaptionStage | None = None

    def setup(self) -> None:
        self.stage = CaptionStage(self.config, make_detector(self.config.langid_backend))

    def process(self, batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        assert self.stage is not None
        started = time.perf_counter()
        BOARD.enter("captions", len(batch))
        rows = self.stage.apply(batch)
        BOARD.finish("captions", len(rows))
        self.caption_ms.inc(int((time.perf_counter() - started) * 1000))
        self.rows.inc(len(rows))
        yield from rows


class Captions(beam.PTransform):
    """Normalise captions, apply the caption rules and identify languages, in batches."""

    def __init__(self, config: CaptionConfig):
        super().__init__()
        self.config = config

    def expand(self, rows):
        return (
            rows
            | "Batch" >> beam.BatchElements(min_batch_size=64, max_batch_size=2048)
            | "CaptionStage" >> beam.ParDo(CaptionStageDoFn(self.config))
        )
