"""The Score step: CLIP image-caption similarity for every downloaded pair, via RunInference.

Score is its own step behind the committed chunks. Only chunk indexes reach it,
through a fusion break (``Reshuffle`` of those small integers), so that its
workers are not the download workers: with ``--clip-accelerator``, the step
carries a Beam accelerator resource hint, and Dataflow's right fitting puts GPU
VMs under this step only while Fetch stays on CPU VMs.

Per committed chunk, the images come out of the raw tar (re-encoded, as they
go into the shards) next to their captions, in uid order, cut into batches of
``--clip-batch-size`` pairs. Each worker process then makes the model's inputs
itself (``PrepareBatchDoFn``: decode, cut off border padding, the model's own
image transform and tokenizer), and only ready arrays go through Beam's
RunInference to the model, embedded and compared in ``transforms.clip``. The
batches are formed here and not by RunInference, whose batch sizes adapt to
timings: a float sum depends on what else is in the batch, and the same pairs
must get the same bits on every run and any number of workers, since the
scores go into the shards. Image bytes never cross a shuffle; what goes on to
Write is one small record per pair, keyed by chunk. Where the runner allows
it, worker processes share one copy of the model.
"""

from __future__ import annotations

import dataclasses
import io as bytes_io
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference

from paircurate.pipeline.progress import BOARD
from paircurate.pipeline.scoring.weights import local_checkpoint
from paircurate.schemas.config import ClipConfig, ImageConfig
from paircurate.schemas.records import working_caption
from paircurate.transforms.crawl.images import content_box
from paircurate.transforms.output.store import RawStore, image_member

log = logging.getLogger(__name__)

# (uid, encoded image, caption, the picture's box inside a border-padded image or None)
Pair = tuple[str, bytes, str, tuple[int, int, int, int] | None]
Example = list[Pair]  # one batch of pairs, formed by ScoreInputsDoFn
# One batch made ready for the model by PrepareBatchDoFn: its uids and a PreparedBatch.
Prepared = tuple[list[str], Any]


class ClipModelHandler(ModelHandler[Prepared, list, Any]):
    """A prepared batch -> its score records, through ``ClipScorer.score_prepared``.

    RunInference hands over one batch at a time (``max_batch_size=1``): the
    batches were formed, in a fixed order, by ``ScoreInputsDoFn`` and made into
    arrays by ``PrepareBatchDoFn``. The model is loaded once per machine where
    the runner allows it (``large_model``), after its checkpoint has been copied
    into the machine's cache (``pipeline.scoring.weights``).
    """

    def __init__(self, config: ClipConfig, image_embeddings: bool = False):
        super().__init__(min_batch_size=1, max_batch_size=1, large_model=True)
        self.config = config
        self.image_embeddings = image_embeddings or config.write_embeddings

    def load_model(self):
        from paircurate.transforms.scoring.clip import load_clip

        config = self.config
        if config.clip_checkpoint:
            config = dataclasses.replace(
                config, clip_checkpoint=local_checkpoint(config.clip_checkpoint)
            )
        scorer = load_clip(config)
        if config.clip_accelerator and scorer.device.type != "cuda":
            log.warning(
                "--clip-accelerator %r asked for a GPU, but this worker scores on %s: "
                "torch sees no CUDA GPU (is the NVIDIA driver installed? add "
                "install-nvidia-driver to the hint)",
                config.clip_accelerator,
                scorer.device,
            )
        return scorer

    def run_inference(
        self, batch: Sequence[Prepared], model, inference_args: dict | None = None
    ) -> Iterable[list[dict]]:
        for uids, prepared in batch:
            yield self._records(uids, model.score_prepared(prepared))

    def _records(self, uids: list[str], scored) -> list[dict]:
        records = []
        for i, uid in enumerate(uids):
            record: dict[str, Any] = {
                "uid": uid,
                "clip_score": float(scored.scores[i]),
                "caption_truncated": bool(scored.truncated[i]),
            }
            if self.image_embeddings:
                record["image_embedding"] = scored.image_embeddings[i].astype("float16").tobytes()
            if self.config.write_embeddings:
                record["text_embedding"] = scored.text_embeddings[i].astype("float16").tobytes()
            records.append(record)
        return records

    def get_num_bytes(self, batch: Sequence[Prepared]) -> int:
        return sum(prepared.pixels.nbytes + prepared.tokens.nbytes for _, prepared in batch)

    def share_model_across_processes(self) -> bool:
        return True


class PrepareBatchDoFn(beam.DoFn):
    """(key, [pair]) -> (key, (uids, PreparedBatch)): the model's inputs, made in this process.

    Border padding is cut off first: the model scores the picture, not the bars
    (a small model such as the reference scorer is thrown by them). The image
    transform and tokenizer are the model's own, loaded without its weights.
    """

    def __init__(self, config: ClipConfig):
        self.config = config
        self.inputs = None

    def setup(self) -> None:
        from paircurate.transforms.scoring.clip import load_clip_inputs

        self.inputs = load_clip_inputs(self.config)

    def process(self, element: tuple[Any, Example]) -> Iterator[tuple[Any, Prepared]]:
        from PIL import Image

        key, pairs = element
        images = []
        for _, body, _, box in pairs:
            image = Image.open(bytes_io.BytesIO(body)).convert("RGB")
            images.append(image.crop(box) if box is not None else image)
        prepared = self.inputs.prepare(images, [caption for _, _, caption, _ in pairs])
        yield key, ([uid for uid, _, _, _ in pairs], prepared)


class ScoreInputsDoFn(beam.DoFn):
    """chunk -> ((chunk, a uid of the batch), [pair]) per batch of its downloaded pairs."""

    def __init__(self, raw: RawStore, batch_size: int, image: ImageConfig):
        self.raw, self.batch_size, self.image = raw, batch_size, image
        self.pairs = Metrics.counter("paircurate", "score_rows")

    def process(self, chunk: int) -> Iterator[tuple[tuple[int, str], Example]]:
        rows, tar = self.raw.rows_and_tar(chunk)
        rows = sorted((row for row in rows if row.get("image_format")), key=lambda r: r["uid"])
        names = [image_member(row["uid"], row["image_format"]) for row in rows]
        if not rows:
            return
        batch: Example = []
        for row, (_, image) in zip(rows, self.raw.images(tar, names), strict=True):
            caption = working_caption(row)
            box = content_box(row["original_width"], row["original_height"], self.image)
            batch.append((row["uid"], image, caption, box))
            if len(batch) == self.batch_size:
                yield self._keyed(chunk, batch)
                batch = []
        if batch:
            yield self._keyed(chunk, batch)

    def _keyed(self, chunk: int, batch: Example) -> tuple[tuple[int, str], Example]:
        self.pairs.inc(len(batch))
        BOARD.enter("score", len(batch))
        return (chunk, batch[0][0]), batch


def score_records(element: tuple[tuple[int, str], list[dict]]) -> list[tuple[int, dict]]:
    (chunk, _), records = element
    BOARD.finish("score", len(records))
    return [(chunk, record) for record in records]


class Score(beam.PTransform):
    """Committed chunk indexes -> (chunk, score record) for every downloaded pair.

    Apply it behind a fusion break (``score_step`` does), so that its workers
    and their resource hints are its own. With ``image_embeddings`` (or
    --write-embeddings) each record carries its pair's image embedding.
    """

    def __init__(
        self, config: ClipConfig, raw: RawStore, image: ImageConfig, image_embeddings: bool = False
    ):
        super().__init__()
        self.config, self.raw, self.image = config, raw, image
        self.image_embeddings = image_embeddings

    def expand(self, chunks):
        handler = KeyedModelHandler(ClipModelHandler(self.config, self.image_embeddings))
        batches = ScoreInputsDoFn(self.raw, self.config.clip_batch_size, self.image)
        return (
            chunks
            | "Batches" >> beam.ParDo(batches)
            | "Tensors" >> beam.ParDo(PrepareBatchDoFn(self.config))
            | "RunInference" >> RunInference(handler)
            | "ByChunk" >> beam.FlatMap(score_records)
        )


def score_step(
    config: ClipConfig, raw: RawStore, image: ImageConfig, image_embeddings: bool = False
) -> beam.PTransform:
    """Score, with the --clip-accelerator resource hint where one is asked for."""
    score = Score(config, raw, image, image_embeddings)
    if config.clip_accelerator:
        score = score.with_resource_hints(accelerator=config.clip_accelerator)
    return score


def score_cut(scores, config: ClipConfig):
    """Side input: the score at the --clip-keep-fraction cut, or None without one."""
    from paircurate.transforms.scoring.clip_filter import QUANTILES, keep_fraction_cut

    if config.clip_keep_fraction is None:
        return None
    fraction = config.clip_keep_fraction
    return beam.pvalue.AsSingleton(
        scores
        | "Scores" >> beam.Map(lambda element: element[1]["clip_score"])
        | "Quantiles" >> beam.ApproximateQuantiles.Globally(QUANTILES)
        | "Cut" >> beam.Map(keep_fraction_cut, fraction),
        default_value=None,
    )
