"""The metric functions: templates, class embeddings, top-k, retrieval recall."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paircurate.evaluation import metrics


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_templates_accept_both_placeholders_and_refuse_none():
    assert metrics.normalise_templates(["a photo of a {}.", "a {c} drawn"]) == [
        "a photo of a {c}.",
        "a {c} drawn",
    ]
    assert metrics.prompts("red circle", ["a photo of a {}.", "a drawing of a {}."]) == [
        "a photo of a red circle.",
        "a drawing of a red circle.",
    ]
    with pytest.raises(ValueError, match="has no"):
        metrics.normalise_templates(["a photo"])
    with pytest.raises(ValueError, match="at least one"):
        metrics.normalise_templates([])


def test_class_embedding_is_the_renormalised_mean_of_each_template():
    seen: list[list[str]] = []
    table = {
        "a photo of a cat.": [1.0, 0.0, 0.0],
        "a drawing of a cat.": [0.0, 1.0, 0.0],
        "a photo of a dog.": [0.0, 0.0, 1.0],
        "a drawing of a dog.": [0.0, 0.0, 1.0],
    }

    def embed(texts: list[str]) -> np.ndarray:
        seen.append(list(texts))
        return np.array([table[text] for text in texts], dtype=np.float32)

    classes = metrics.class_embeddings(
        embed, ["cat", "dog"], ["a photo of a {}.", "a drawing of a {}."]
    )
    assert seen == [list(table)]
    half = np.float32(np.sqrt(0.5))
    np.testing.assert_allclose(classes, [[half, half, 0.0], [0.0, 0.0, 1.0]], rtol=1e-6)


def test_top_k_and_mean_per_class_recall():
    classes = np.eye(3, dtype=np.float32)
    images = unit([[0.9, 0.1, 0.0], [0.1, 0.8, 0.3], [0.6, 0.0, 0.4], [0.0, 0.5, 0.6]])
    targets = np.array([0, 1, 2, 2])
    found = metrics.classification_metrics(images, classes, targets)
    # predictions 0, 1, 0, 2: three of four right; class recalls 1, 1, 0.5
    assert found["top1"] == pytest.approx(0.75)
    assert found["mean_per_class_recall"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert found["top5"] == pytest.approx(1.0)  # capped at the three classes


def test_top_k_matches_torch_topk_definition():
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.3, 0.2, 0.9]])
    assert metrics.top_k_accuracy(logits, torch.tensor([2, 0]), (1, 2)) == [0.0, 1.0]


@pytest.mark.parametrize("n", [1, 7, 30])
def test_identity_embedding_has_perfect_recall(n):
    identity = np.eye(n, dtype=np.float32)
    found = metrics.retrieval_metrics(identity, identity)
    assert set(found) == {
        f"{direction}_retrieval_recall@{k}" for direction in ("image", "text") for k in (1, 5, 10)
    }
    assert all(value == 1.0 for value in found.values())


def test_recall_counts_a_query_when_its_positive_is_in_the_top_k():
    images = np.eye(4, dtype=np.float32)
    # caption 0 leans towards image 1, so text -> image misses it at k=1
    texts = unit([[0.2, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    found = metrics.retrieval_metrics(images, texts, ks=(1, 2))
    assert found["image_retrieval_recall@1"] == pytest.approx(0.75)
    assert found["image_retrieval_recall@2"] == pytest.approx(1.0)
    # from the images' side each still ranks its own caption first (image 1: 1.0 > 0.98)
    assert found["text_retrieval_recall@1"] == pytest.approx(1.0)
