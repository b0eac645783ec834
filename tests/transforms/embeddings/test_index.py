"""The shard-by-shard index: same answers as one index built at once, and as exact search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from paircurate.pipeline import filesystem as fs
from paircurate.transforms.embeddings.index import (
    IndexConfig,
    SearchIndex,
    SearchIndexError,
    build_index,
    row_id,
    shard_embeddings,
    split_id,
    trained_index,
    training_sample,
)
from paircurate.transforms.output.store import OutputLayout

SHARD_ROWS = (120, 0, 95, 140)
DIM = 32


def clustered(rows: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    picks = centres[rng.integers(len(centres), size=rows)]
    vectors = picks + 0.3 * rng.normal(size=(rows, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float16)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """A run folder holding only float16 image embeddings, four shards (one empty)."""
    root = tmp_path_factory.mktemp("run")
    folder = root / "embeddings" / "img_emb"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(12, DIM))
    shards = []
    for shard, rows in enumerate(SHARD_ROWS):
        vectors = clustered(rows, rng, centres) if rows else np.zeros((0, 0), np.float16)
        np.save(folder / f"img_emb_{shard:05d}.npy", vectors)
        shards.append(vectors)
    return root, shards


def layout_of(root: Path) -> OutputLayout:
    return OutputLayout(fs.FILES, str(root))


def all_vectors(shards: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every vector as float32 unit rows, and its id."""
    vectors, ids = [], []
    for shard, array in enumerate(shards):
        if len(array):
            unit = array.astype(np.float32)
            vectors.append(unit / np.linalg.norm(unit, axis=1, keepdims=True))
            ids.append([row_id(shard, row) for row in range(len(array))])
    return np.concatenate(vectors), np.concatenate(ids).astype(np.int64)


def test_ids_name_shard_and_row():
    assert split_id(row_id(3, 17)) == (3, 17)
    assert split_id(row_id(70_000, 2**32 - 1)) == (70_000, 2**32 - 1)


def test_shards_are_listed_with_their_sizes_from_the_npy_headers(run):
    root, _ = run
    found = shard_embeddings(layout_of(root))
    assert [(s.shard, s.rows) for s in found] == list(enumerate(SHARD_ROWS))
    assert {s.dim for s in found if s.rows} == {DIM}


def test_built_shard_by_shard_it_answers_as_one_index_built_at_once(run, tmp_path):
    root, shards = run
    config = IndexConfig(clusters=6, probes=2, train_size=200, seed=3)
    info = build_index(layout_of(root), str(tmp_path / "index"), None, config)
    assert info["vectors"] == sum(SHARD_ROWS) and info["clusters"] == 6
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == [
        "image.index", "image.ivfdata", "index.json",
    ]  # fmt: skip
    merged = SearchIndex(str(tmp_path / "index"))
    vectors, ids = all_vectors(shards)
    sample = training_sample(fs.FILES, shard_embeddings(layout_of(root)), 200, 3)
    at_once = trained_index(sample, 6, seed=3)
    at_once.add_with_ids(vectors, ids)
    at_once.nprobe = 2
    queries = vectors[::7]
    merged_scores, merged_ids = merged.search(queries, 10)
    once_scores, once_ids = at_once.search(queries, 10)
    np.testing.assert_array_equal(merged_ids, once_ids)
    np.testing.assert_allclose(merged_scores, once_scores, rtol=1e-6)


def test_visiting_every_list_it_answers_as_exact_search(run, tmp_path):
    root, shards = run
    config = IndexConfig(clusters=4, probes=4)
    build_index(layout_of(root), str(tmp_path / "index"), None, config)
    index = SearchIndex(str(tmp_path / "index"))
    vectors, ids = all_vectors(shards)
    queries = vectors[::11]
    scores, found = index.search(queries, 5)
    exact = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, exact, 1), atol=1e-5)
    assert (found[:, 0] == ids[::11]).all()  # each vector finds itself first


def test_a_run_without_embeddings_is_refused_with_the_flag_to_set(tmp_path):
    with pytest.raises(SearchIndexError, match="--write-embeddings"):
        build_index(layout_of(tmp_path), str(tmp_path / "index"), None)


def test_searching_before_building_says_how_to_build(tmp_path):
    with pytest.raises(SearchIndexError, match="paircurate index RUN_DIR"):
        SearchIndex(str(tmp_path))
