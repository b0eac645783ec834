"""Zero-shot classification and image-text retrieval metrics, by clip_benchmark's functions.

The arithmetic is LAION's ``clip_benchmark`` (``zero_shot_classifier``, ``accuracy``,
``recall_at_k``), called as a library, so a top-1 or a recall@5 from paircurate is the
number ``clip_benchmark`` prints for the same model and data. What this module adds is
plumbing: prompt templates written as ``{}`` or ``{c}``, top-k capped at the number of
classes, and embeddings kept as numpy for the JSON result.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

try:
    from clip_benchmark.metrics import zeroshot_classification, zeroshot_retrieval
except ImportError as error:  # a missing optional package fails at start-up with a hint
    raise ImportError(
        "paircurate eval needs LAION's clip_benchmark: pip install 'paircurate[eval]' "
        "(or pip install clip-benchmark==1.6.2)"
    ) from error

# CLIP's prompt ensembling (Radford et al. 2021, section 3.1.4): several wordings per
# class, their normalised text embeddings averaged and normalised again.
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {c}.",
    "a drawing of a {c}.",
    "a picture of a {c}.",
    "an illustration of a {c}.",
)
RECALL_KS: tuple[int, ...] = (1, 5, 10)


def normalise_templates(templates: Sequence[str]) -> list[str]:
    """Templates in clip_benchmark's ``{c}`` form; ``{}`` (CLIP's notebooks) is accepted too."""
    if not templates:
        raise ValueError("at least one prompt template is needed, e.g. 'a photo of a {}.'")
    found = []
    for template in templates:
        text = template.replace("{}", "{c}")
        if "{c}" not in text:
            raise ValueError(f"prompt template {template!r} has no '{{}}' for the class name")
        found.append(text)
    return found


def prompts(classname: str, templates: Sequence[str]) -> list[str]:
    """The texts one class is embedded from: each template filled with its name."""
    return [template.format(c=classname) for template in normalise_templates(templates)]


def class_embeddings(
    embed_texts: Callable[[list[str]], np.ndarray],
    classnames: Sequence[str],
    templates: Sequence[str],
) -> np.ndarray:
    """One L2-normalised text embedding per class, (C, D): the templates' mean, renormalised.

    ``embed_texts`` maps prompts to L2-normalised embeddings (a ``ClipScorer``'s tokenizer
    and text tower). This is clip_benchmark's ``zero_shot_classifier`` with every prompt
    of every class embedded in one pass instead of a model call and a progress bar per
    class; a test holds the two to the same numbers.
    """
    if not classnames:
        raise ValueError("zero-shot classification needs at least one class name")
    filled = normalise_templates(templates)
    texts = [template.format(c=name) for name in classnames for template in filled]
    embeddings = np.asarray(embed_texts(texts), dtype=np.float32)
    per_class = embeddings.reshape(len(classnames), len(filled), -1).mean(axis=1)
    return per_class / np.linalg.norm(per_class, axis=1, keepdims=True)


def classification_metrics(
    image_embeddings: np.ndarray, classes: np.ndarray, targets: np.ndarray
) -> dict[str, float]:
    """top-1, top-5 (capped at the number of classes) and mean per-class recall.

    ``image_embeddings`` (N, D) and ``classes`` (C, D) are L2-normalised; logits are
    100 x their dot products, as in clip_benchmark's ``run_classification``.
    """
    if len(image_embeddings) == 0:
        raise ValueError("zero-shot classification needs at least one labelled image")
    logits = 100.0 * torch.from_numpy(image_embeddings) @ torch.from_numpy(classes).T
    target = torch.from_numpy(np.asarray(targets, dtype=np.int64))
    top1_value, top5_value = top_k_accuracy(logits, target, (1, min(5, classes.shape[0])))
    predicted = logits.argmax(dim=1).numpy()
    return {
        "top1": top1_value,
        "top5": top5_value,
        "mean_per_class_recall": mean_per_class_recall(predicted, targets),
    }


def top_k_accuracy(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int]) -> list[float]:
    """Share of rows whose class is among the k largest logits: clip_benchmark's ``accuracy``.

    Its own function ends in ``float()`` of a one-element array, which numpy 2.4 refuses,
    so the same arithmetic (``topk``, ties broken by torch's order) is restated here.
    """
    predicted = logits.topk(max(ks), dim=1, largest=True, sorted=True).indices.T
    correct = predicted.eq(target.view(1, -1).expand_as(predicted))
    return [correct[:k].reshape(-1).float().sum().item() / len(target) for k in ks]


def mean_per_class_recall(predicted: np.ndarray, targets: np.ndarray) -> float:
    """clip_benchmark's ``mean_per_class_recall``: sklearn's balanced accuracy.

    Averaged over the classes present in ``targets``; predicting an absent class
    only counts as a miss (sklearn's warning about it is silenced).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(zeroshot_classification.balanced_accuracy_score(targets, predicted))


def retrieval_metrics(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    text_image_index: Sequence[int] | None = None,
    ks: Sequence[int] = RECALL_KS,
    batch_size: int = 256,
) -> dict[str, float]:
    """Recall@k both ways, as clip_benchmark's ``zeroshot_retrieval.evaluate`` counts it.

    ``text_image_index[t]`` is the image text t describes (default: row for row). A query
    scores 1 when at least one of its positives is among its top k; k is capped at the
    number of candidates. Keys: ``image_retrieval_recall@k`` (text -> image) and
    ``text_retrieval_recall@k`` (image -> text).
    """
    images = torch.from_numpy(np.ascontiguousarray(image_embeddings, dtype=np.float32))
    texts = torch.from_numpy(np.ascontiguousarray(text_embeddings, dtype=np.float32))
    if len(images) == 0 or len(texts) == 0:
        raise ValueError("retrieval needs at least one image and one caption")
    index = list(range(len(texts))) if text_image_index is None else list(text_image_index)
    if len(index) != len(texts):
        raise ValueError(f"{len(texts)} captions but {len(index)} caption-to-image indices")
    scores = texts @ images.T
    positives = torch.zeros_like(scores, dtype=torch.bool)
    positives[torch.arange(len(texts)), torch.tensor(index)] = True
    found = {}
    for k in ks:
        image_k, text_k = min(k, len(images)), min(k, len(texts))
        found[f"image_retrieval_recall@{k}"] = _recall(scores, positives, image_k, batch_size)
        found[f"text_retrieval_recall@{k}"] = _recall(scores.T, positives.T, text_k, batch_size)
    return found


def _recall(scores: torch.Tensor, positives: torch.Tensor, k: int, batch_size: int) -> float:
    per_query = zeroshot_retrieval.batchify(
        zeroshot_retrieval.recall_at_k, scores, positives, batch_size, "cpu", k=k
    )
    return float((per_query > 0).float().mean().item())
