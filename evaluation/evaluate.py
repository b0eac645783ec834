"""Run the evaluations on a loaded model and gather one JSON-ready result.

The model is whatever ``transforms/scoring/clip.py`` loads (an open_clip name and
tag, an ``hf-hub:`` id, a checkpoint, or ``paircurate-ref``); its own eval transform
and tokenizer are used, and images are embedded ``batch_size`` at a time so that
memory stays bounded whatever the size of the set.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from itertools import islice
from typing import Any

import numpy as np

from paircurate.evaluation import data, metrics
from paircurate.transforms.scoring.clip import ClipScorer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZeroShotTask:
    """A labelled image set and how to name its classes."""

    source: str
    classnames: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    label_field: str = ""
    task: str | None = None
    language: str = "en"
    limit: int = 0  # images to use at most; 0: all


@dataclass(frozen=True)
class ResolvedTask:
    """A task with everything filled in from the data source, its classes.json, or defaults."""

    classnames: list[str]
    templates: list[str]
    label_field: str
    image_folder: bool


def resolve_task(task: ZeroShotTask) -> ResolvedTask:
    """Class names, templates and label field: given ones win, then classes.json, then defaults."""
    folder = data.is_image_folder(task.source)
    if not folder:
        data.shard_urls(task.source)  # a clear error when there is nothing to read
    spec = data.load_class_spec(task.source, task.task, task.language)
    classnames = list(task.classnames) or (spec.classnames if spec else [])
    if not classnames and folder:
        classnames = data.image_folder_classes(task.source)
    if not classnames:
        raise data.EvalDataError(
            f"{task.source}: no class names; pass --classnames FILE (a JSON list or one name "
            f"a line) or put a {data.CLASSES_FILE} beside the data"
        )
    templates = (
        list(task.templates) or (spec.templates if spec else []) or [*metrics.DEFAULT_TEMPLATES]
    )
    label_field = task.label_field or (spec.label_field if spec else "cls")
    return ResolvedTask(classnames, metrics.normalise_templates(templates), label_field, folder)


def labelled_images(task: ZeroShotTask, resolved: ResolvedTask) -> Iterator[tuple[Any, int]]:
    if resolved.image_folder:
        pairs = data.iter_image_folder(task.source, resolved.classnames)
    else:
        pairs = data.iter_labelled_shards(task.source, resolved.label_field, resolved.classnames)
    return islice(pairs, task.limit) if task.limit else pairs


def embed_labelled(
    scorer: ClipScorer, pairs: Iterable[tuple[Any, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Image embeddings (N, D) and class indices (N,), a batch at a time."""
    parts, targets = [], []
    for batch in _batches(pairs, scorer.batch_size):
        images, labels = zip(*batch, strict=True)
        parts.append(scorer.embed_images(scorer.preprocess_images(images)))
        targets.extend(labels)
    if not parts:
        raise data.EvalDataError("the labelled image set is empty")
    return np.concatenate(parts), np.asarray(targets, dtype=np.int64)


def zero_shot(scorer: ClipScorer, task: ZeroShotTask) -> dict[str, Any]:
    """Zero-shot classification of a labelled set: top-1, top-5, mean per-class recall."""
    resolved = resolve_task(task)
    classes = metrics.class_embeddings(
        lambda texts: scorer.embed_texts(scorer.tokenize(texts)[0]),
        resolved.classnames,
        resolved.templates,
    )
    images, targets = embed_labelled(scorer, labelled_images(task, resolved))
    return {
        "dataset": task.source,
        "task": task.task,
        "language": task.language,
        "classes": len(resolved.classnames),
        "images": int(len(targets)),
        "templates": resolved.templates,
        "label_field": None if resolved.image_folder else resolved.label_field,
        **metrics.classification_metrics(images, classes, targets),
    }


def embed_captioned(
    scorer: ClipScorer, pairs: Iterable[tuple[Any, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Image and caption embeddings, row for row, a batch at a time."""
    image_parts, text_parts = [], []
    for batch in _batches(pairs, scorer.batch_size):
        images, captions = zip(*batch, strict=True)
        image_parts.append(scorer.embed_images(scorer.preprocess_images(images)))
        tokens, _ = scorer.tokenize(captions)
        text_parts.append(scorer.embed_texts(tokens))
    if not image_parts:
        raise data.EvalDataError("the captioned set is empty")
    return np.concatenate(image_parts), np.concatenate(text_parts)


def retrieval(scorer: ClipScorer, source: str, limit: int = 0) -> dict[str, Any]:
    """Image-text retrieval on captioned pairs: recall@1/5/10 in both directions."""
    pairs = data.iter_captioned(source)
    images, texts = embed_captioned(scorer, islice(pairs, limit) if limit else pairs)
    return {
        "dataset": source,
        "pairs": int(len(images)),
        **metrics.retrieval_metrics(images, texts),
    }


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def versions() -> dict[str, str]:
    found = {}
    for package in ("open_clip_torch", "clip-benchmark", "torch"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def write_result(result: dict[str, Any], path: str) -> str:
    """The result as indented JSON, temp-then-rename; parent folders are created."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as sink:
        json.dump(result, sink, indent=2, ensure_ascii=False)
        sink.write("\n")
    os.replace(temporary, path)
    return path


def summary_lines(result: dict[str, Any]) -> Sequence[str]:
    """A few human lines for the console."""
    lines = [f"model:     {result['model']['label']}"]
    shot = result.get("zeroshot")
    if shot:
        lines.append(
            f"zero-shot: top-1 {shot['top1']:.4f}  top-5 {shot['top5']:.4f}  mean per-class "
            f"recall {shot['mean_per_class_recall']:.4f}  ({shot['images']} images, "
            f"{shot['classes']} classes, {len(shot['templates'])} templates)"
        )
    found = result.get("retrieval")
    if found:
        parts = "  ".join(
            f"R@{k} i2t {found[f'text_retrieval_recall@{k}']:.4f} "
            f"t2i {found[f'image_retrieval_recall@{k}']:.4f}"
            for k in metrics.RECALL_KS
        )
        lines.append(f"retrieval: {parts}  ({found['pairs']} pairs)")
    return lines
