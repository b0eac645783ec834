"""Training and calibration of the reference CLIP scorer, on the synthetic web.

The scorer itself (its name, files, registration with open_clip and calibrated
threshold) is ``transforms.scoring.reference_scorer``; this module makes its
checkpoint and measures its threshold, and is the only part that needs the
synthetic web.

It is trained contrastively on clean pairs of the synthetic web (``TRAIN_SEED``,
captions in en/de/fr/es) and only knows that world: shapes, colours, counts,
sizes, positions and backgrounds. ``REFERENCE_THRESHOLD`` is the cosine
similarity that best separates matching from mismatched captions on rows of the
training seed's web that training never saw (see ``calibrate``). Retrain with::

    python -m paircurate.synthweb.reference_training train --out PATH
    python -m paircurate.synthweb.reference_training calibrate --checkpoint PATH

``separation`` measures what its image embedding tells apart (re-framed copies
against distinct scenes), which bounds what semantic dedup can do with it.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from PIL import Image, ImageOps

from paircurate.synthweb.captions import LANGUAGES, describe
from paircurate.synthweb.web import SyntheticWeb, WebMix
from paircurate.transforms.scoring.reference_scorer import (
    CHECKPOINT_PATH,
    MODEL_NAME,
    TRAIN_COMMAND,
    TRAIN_SEED,
    register_reference_model,
)

# Labels whose caption describes the image (non_english rows are clean but foreign).
MATCHING_LABELS = frozenset({"clean", "non_english"})
CALIBRATION_MIX = dataclasses.replace(WebMix.clean_only(), mismatched=0.3, non_english=0.3)

logger = logging.getLogger(__name__)

Scorer = tuple[torch.nn.Module, Callable[[Image.Image], torch.Tensor], Callable[..., torch.Tensor]]


def load_reference_scorer(device: str = "cpu", checkpoint: str | Path | None = None) -> Scorer:
    """(model, preprocess, tokenizer) of the reference scorer, in eval mode, via open_clip's API.

    The checkpoint defaults to the one shipped in the package; a missing file raises
    FileNotFoundError that says how to build one, rather than open_clip's "unknown tag".
    """
    path = Path(checkpoint) if checkpoint is not None else CHECKPOINT_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"reference scorer checkpoint not found at {path}; train one with "
            f"`{TRAIN_COMMAND}` and pass its path as checkpoint=PATH, "
            "or reinstall paircurate to restore the shipped "
            "transforms/scoring/models/paircurate_ref.pt"
        )
    register_reference_model()
    model, _, preprocess = open_clip.create_model_and_transforms(
        MODEL_NAME, pretrained=str(path), device=device
    )
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(MODEL_NAME)


def decode_image(body: bytes) -> Image.Image:
    """Upright RGB pixels of an encoded image, as the fetch stage hands them to the scorer."""
    image = Image.open(io.BytesIO(body))
    return ImageOps.exif_transpose(image).convert("RGB")


def _batched(
    encode: Callable[[Sequence[Any]], torch.Tensor], items: Sequence[Any], batch_size: int
) -> np.ndarray:
    """encode over items a batch at a time, as float32 rows (no rows: shape (0, 0))."""
    parts = [
        encode(items[start : start + batch_size]).float().cpu().numpy()
        for start in range(0, len(items), batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


@torch.no_grad()
def embed_images(
    scorer: Scorer, images: Sequence[Image.Image], batch_size: int = 128
) -> np.ndarray:
    """Unit image embeddings, as float32 rows."""
    model, preprocess, _ = scorer
    device = next(model.parameters()).device

    def encode(batch: Sequence[Image.Image]) -> torch.Tensor:
        pixels = torch.stack([preprocess(image) for image in batch])
        return model.encode_image(pixels.to(device), normalize=True)

    return _batched(encode, images, batch_size)


@torch.no_grad()
def embed_texts(scorer: Scorer, captions: Sequence[str], batch_size: int = 128) -> np.ndarray:
    """Unit text embeddings, as float32 rows."""
    model, _, tokenizer = scorer
    device = next(model.parameters()).device

    def encode(batch: Sequence[str]) -> torch.Tensor:
        return model.encode_text(tokenizer(list(batch)).to(device), normalize=True)

    return _batched(encode, captions, batch_size)


def score_pairs(
    scorer: Scorer, images: Sequence[Image.Image], captions: Sequence[str], batch_size: int = 128
) -> np.ndarray:
    """Cosine similarity of each image with its own caption, as float32."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    if not images:
        return np.zeros(0, dtype=np.float32)
    image_side = embed_images(scorer, images, batch_size)
    text_side = embed_texts(scorer, captions, batch_size)
    return (image_side * text_side).sum(axis=1).astype(np.float32)


# --- training ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """How the reference scorer is trained; the defaults made the shipped checkpoint."""

    pairs: int = 4000
    epochs: int = 20
    seed: int = TRAIN_SEED
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 40
    threads: int = 2

    def __post_init__(self) -> None:
        for name in ("pairs", "epochs", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)} must be >= 1")
        if self.pairs < self.batch_size:
            raise ValueError(
                f"TrainConfig.pairs={self.pairs} must be >= batch_size={self.batch_size}"
            )


@dataclass(frozen=True)
class TrainResult:
    """What a training run did, for the CLI's JSON line."""

    checkpoint: str
    seconds: float
    steps: int
    final_loss: float
    checkpoint_bytes: int


def seed_everything(seed: int, threads: int) -> None:
    """Fix every source of randomness and the thread count, so training is repeatable."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def training_caption(web: SyntheticWeb, index: int, epoch: int, seed: int) -> str:
    """A fresh caption of row index's scene per epoch, in any of the four languages.

    Drawing new wording each epoch teaches the text tower the attributes rather
    than the templates, and every language maps to the same image features.
    """
    rng = random.Random(f"{seed}:{epoch}:{index}")
    return describe(web.scene(web.entry(index).scene), rng.choice(LANGUAGES), rng)


def training_pixels(
    web: SyntheticWeb, preprocess: Callable[[Image.Image], torch.Tensor]
) -> torch.Tensor:
    """Every row's image, preprocessed once (the model sees 64 px; no augmentation)."""
    return torch.stack([preprocess(decode_image(web.image_bytes(i))) for i in range(len(web))])


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with no weight decay on gains, biases and the temperature (as open_clip_train)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        skip = parameter.ndim < 2 or "ln" in name or "bias" in name or "logit_scale" in name
        (no_decay if skip else decay).append(parameter)
    groups = [
        {"params": no_decay, "weight_decay": 0.0},
        {"params": decay, "weight_decay": config.weight_decay},
    ]
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.98), eps=1e-6)


def _learning_rate(step: int, total: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
    return 0.5 * config.learning_rate * (1.0 + float(np.cos(np.pi * progress)))


def _run_epochs(
    model: torch.nn.Module, web: SyntheticWeb, pixels: torch.Tensor, config: TrainConfig
) -> tuple[int, float]:
    """The contrastive training loop; returns (steps, loss of the last step)."""
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    loss_fn = open_clip.ClipLoss()
    optimizer = _optimizer(model, config)
    per_epoch = config.pairs // config.batch_size
    total, step, loss = per_epoch * config.epochs, 0, torch.tensor(0.0)
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(config.pairs, generator=generator)
        for batch in order[: per_epoch * config.batch_size].view(per_epoch, -1).tolist():
            captions = [training_caption(web, i, epoch, config.seed) for i in batch]
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(step, total, config)
            loss = loss_fn(*model(pixels[batch], tokenizer(captions)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, float(np.log(100)))
            step += 1
        logger.info("epoch %d/%d loss %.4f", epoch + 1, config.epochs, loss.item())
    return step, float(loss.item())


def save_checkpoint(model: torch.nn.Module, out: Path) -> int:
    """Write the state dict in fp16 (open_clip loads it into fp32), temp-then-rename."""
    state = {
        key: value.half() if value.is_floating_point() else value
        for key, value in model.state_dict().items()
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, out)
    return out.stat().st_size


def train(config: TrainConfig, out: Path) -> TrainResult:
    """Train the reference scorer from scratch on clean pairs and write its checkpoint."""
    started = time.perf_counter()
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        seed_everything(config.seed, config.threads)
        register_reference_model()
        model, _, preprocess = open_clip.create_model_and_transforms(MODEL_NAME)
        web = SyntheticWeb(config.pairs, seed=config.seed, mix=WebMix.clean_only())
        pixels = training_pixels(web, preprocess)
        logger.info("decoded %d images in %.1f s", len(web), time.perf_counter() - started)
        steps, final_loss = _run_epochs(model, web, pixels, config)
    finally:  # a library call must not change the caller's torch settings
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    size = save_checkpoint(model, out)
    return TrainResult(str(out), time.perf_counter() - started, steps, final_loss, size)


# --- calibration -------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledScores:
    """Cosine scores of a web's rows that carry an image, with their labels."""

    scores: np.ndarray
    labels: list[str]

    def matching(self) -> np.ndarray:
        return self.scores[[label in MATCHING_LABELS for label in self.labels]]

    def mismatched(self) -> np.ndarray:
        return self.scores[[label == "mismatched" for label in self.labels]]


def labelled_pairs(
    web: SyntheticWeb, indices: Sequence[int]
) -> tuple[list[Image.Image], list[str], list[str]]:
    """(images, captions, labels) of the rows that serve a decodable image; others are skipped."""
    images, captions, labels = [], [], []
    for index in indices:
        try:
            image = decode_image(web.image_bytes(index))
        except (ValueError, OSError):  # rows without an image, truncated bodies
            continue
        entry = web.entry(index)
        images.append(image)
        captions.append(entry.caption)
        labels.append(entry.label)
    return images, captions, labels


def score_web(
    scorer: Scorer, web: SyntheticWeb, indices: Sequence[int], batch_size: int = 128
) -> LabelledScores:
    """Score the rows of a web that serve a decodable image, a batch of decoded images at a time."""
    scores, labels = [], []
    for start in range(0, len(indices), batch_size):
        images, captions, batch_labels = labelled_pairs(web, indices[start : start + batch_size])
        scores.append(score_pairs(scorer, images, captions))
        labels.extend(batch_labels)
    return LabelledScores(np.concatenate(scores) if scores else np.zeros(0, np.float32), labels)


def best_threshold(matching: np.ndarray, mismatched: np.ndarray) -> float:
    """The cut that maximises clean_kept + mismatch_removed, midway between two scores."""
    candidates = np.unique(np.concatenate([matching, mismatched]).astype(np.float64))
    cuts = np.concatenate([[candidates[0] - 1e-3], (candidates[1:] + candidates[:-1]) / 2])
    kept = (matching[None, :] >= cuts[:, None]).mean(axis=1)
    removed = (mismatched[None, :] < cuts[:, None]).mean(axis=1)
    return float(cuts[int(np.argmax(kept + removed))])


def filter_quality(scores: LabelledScores, threshold: float) -> dict[str, float]:
    """The two figures the issue asks for, at a given threshold."""
    return {
        "mismatch_removed": float((scores.mismatched() < threshold).mean()),
        "clean_kept": float((scores.matching() >= threshold).mean()),
    }


def calibrate(checkpoint: Path, pairs: int = 2000, trained_pairs: int = 4000) -> dict[str, Any]:
    """Best threshold on rows of the training seed's web that come after the training rows.

    Row i of a web draws its scene from (seed, i) alone, so rows past ``trained_pairs``
    show scenes that training never saw, and mismatched rows are plentiful in this mix.
    """
    scorer = load_reference_scorer(checkpoint=checkpoint)
    web = SyntheticWeb(trained_pairs + pairs, seed=TRAIN_SEED, mix=CALIBRATION_MIX)
    scores = score_web(scorer, web, range(trained_pairs, trained_pairs + pairs))
    threshold = best_threshold(scores.matching(), scores.mismatched())
    return {"threshold": round(threshold, 4), **filter_quality(scores, threshold)}


# --- image-embedding separation (what semantic dedup can rely on) ---------------------------

SEPARATION_MIX = dataclasses.replace(WebMix.clean_only(), reframed=0.15)
SEPARATION_SEED = 11


DESCRIBED = ("shape", "colour", "count", "size", "position", "background", "background_style")
"""A scene's attributes that labels and captions tell (all but the layout seed: the objects'
exact placement and tints, and the grain)."""
DISTINCT_CLASSES = ("same_colours", "one_colour_differs", "both_colours_differ")


def description(scene: Any) -> tuple:
    """What the labels say of a scene: two scenes with one description are one labelled scene."""
    return tuple(getattr(scene, name) for name in DESCRIBED)


def separation(vectors: np.ndarray, scenes: Sequence[Any], scene_ids: Sequence[int]) -> dict:
    """How close copies and distinct scenes come: cosine ranges of labelled pairs of rows.

    Rows with the same ``scene_ids`` are copies of one picture. Other pairs are
    distinct scenes, classed by the colours they share: ``same_colours`` (object
    and background colour equal; they differ in shape, count, size, position or
    background style), ``one_colour_differs`` and ``both_colours_differ``.
    Two scenes drawn with the same description (every attribute in
    ``DESCRIBED`` equal; only the objects' jitter, tints and grain differ) are
    counted apart, as ``same_description``: no label tells them apart, so they
    are not distinct labelled scenes. The ``large_`` figures count only pairs of
    two scenes of large objects. ``one_attribute_max`` is, per attribute, the
    closest two distinct scenes that differ in that attribute alone: which
    differences the embedding does not see.
    """
    similarity = vectors @ vectors.T
    first, second = np.triu_indices(len(vectors), k=1)
    cosine = similarity[first, second]
    ids = np.asarray(scene_ids)
    colour = np.array([scene.colour for scene in scenes])
    background = np.array([scene.background for scene in scenes])
    large = np.array([scene.size == "large" for scene in scenes])
    _, described = np.unique([repr(description(s)) for s in scenes], return_inverse=True)
    copy = ids[first] == ids[second]
    alike = ~copy & (described[first] == described[second])
    distinct = ~copy & ~alike
    differ = (colour[first] != colour[second]).astype(int) + (
        background[first] != background[second]
    )
    both_large = large[first] & large[second]
    attributes = np.array([description(scene) for scene in scenes], dtype=object)
    differs = attributes[first] != attributes[second]  # (pairs, attributes)
    alone = distinct & (differs.sum(axis=1) == 1)

    def top(mask: np.ndarray) -> float | None:
        return round(float(cosine[mask].max()), 4) if mask.any() else None

    def bottom(mask: np.ndarray) -> float | None:
        return round(float(cosine[mask].min()), 4) if mask.any() else None

    return {
        "copy_pairs": int(copy.sum()),
        "copy_min": bottom(copy),
        "copy_median": round(float(np.median(cosine[copy])), 4) if copy.any() else None,
        "large_copy_min": bottom(copy & both_large),
        "same_description_pairs": int(alike.sum()),
        "same_description_max": top(alike),
        "distinct_max": {
            name: top(distinct & (differ == n)) for n, name in enumerate(DISTINCT_CLASSES)
        },
        "large_distinct_max": {
            name: top(distinct & both_large & (differ == n))
            for n, name in enumerate(DISTINCT_CLASSES)
        },
        "one_attribute_max": {
            name: top(alone & differs[:, column]) for column, name in enumerate(DESCRIBED)
        },
    }


def measure_separation(
    checkpoint: Path, pairs: int = 600, seed: int = SEPARATION_SEED
) -> dict[str, Any]:
    """``separation`` of the reference scorer's image embeddings on a web with re-framed copies.

    ``threshold`` is midway between the closest two distinct scenes and the
    farthest re-framed copy when every copy is closer than every two distinct
    scenes (a semantic dedup threshold that catches every copy and merges no
    distinct labelled scene on this web), and None when they overlap.
    ``palette_threshold`` is midway between the closest two distinct scenes of
    large objects whose object and background colours both differ and the
    farthest re-framed copy of a large object: the threshold the palette-web
    semantic dedup test uses.
    """
    scorer = load_reference_scorer(checkpoint=checkpoint)
    web = SyntheticWeb(pairs, seed=seed, mix=SEPARATION_MIX)
    images, scenes, scene_ids = [], [], []
    for entry in web:
        images.append(decode_image(web.image_bytes(entry.index)))
        scenes.append(web.scene(entry.scene))
        scene_ids.append(entry.scene)
    result = separation(embed_images(scorer, images), scenes, scene_ids)
    closest = max((v for v in result["distinct_max"].values() if v is not None), default=None)
    threshold = _midway(closest, result["copy_min"], digits=3)
    distinct = result["large_distinct_max"]["both_colours_differ"]
    palette = _midway(distinct, result["large_copy_min"], digits=2)
    return {
        "pairs": pairs,
        "seed": seed,
        **result,
        "threshold": threshold,
        "palette_threshold": palette,
    }


def _midway(distinct: float | None, copies: float | None, digits: int) -> float | None:
    """The middle of the gap from the closest distinct pair up to the farthest copy, if any."""
    if distinct is None or copies is None or copies <= distinct:
        return None
    return round((distinct + copies) / 2, digits)


# --- command line ------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m paircurate.synthweb.reference_training")
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="train the scorer and write a checkpoint")
    train_parser.add_argument("--out", type=Path, required=True, help="checkpoint file to write")
    train_parser.add_argument("--pairs", type=int, default=defaults.pairs, help="training images")
    train_parser.add_argument("--epochs", type=int, default=defaults.epochs, help="passes")
    train_parser.add_argument("--seed", type=int, default=defaults.seed, help="web and torch seed")
    calibrate_parser = commands.add_parser("calibrate", help="print the best cosine threshold")
    calibrate_parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT_PATH)
    calibrate_parser.add_argument("--pairs", type=int, default=2000, help="calibration rows")
    calibrate_parser.add_argument(
        "--trained-pairs", type=int, default=defaults.pairs, help="rows training used (skipped)"
    )
    separation_parser = commands.add_parser(
        "separation", help="cosines of re-framed copies and of distinct scenes"
    )
    separation_parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT_PATH)
    separation_parser.add_argument("--pairs", type=int, default=600, help="rows of the web")
    separation_parser.add_argument("--seed", type=int, default=SEPARATION_SEED, help="web seed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Train, calibrate or measure separation; prints one JSON line with the outcome."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = _parse(argv)
    if args.command == "train":
        config = TrainConfig(pairs=args.pairs, epochs=args.epochs, seed=args.seed)
        result = dataclasses.asdict(train(config, args.out))
    elif args.command == "separation":
        result = measure_separation(args.checkpoint, args.pairs, args.seed)
    else:
        result = calibrate(args.checkpoint, args.pairs, args.trained_pairs)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
