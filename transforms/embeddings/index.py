"""An approximate nearest-neighbour index over a run's image embeddings, built shard by shard.

The index is faiss's inverted file (``IVF<nlist>,Flat``, inner product on
L2-normalised vectors, so scores are cosine similarities), built the way
clip-retrieval's autofaiss builds large ones:

1. **train** the coarse quantizer (k-means, ``nlist`` centroids) on a sample
   drawn from every shard in proportion to its size (at most ``train_size``
   vectors);
2. **add** each shard's vectors to a copy of the trained, empty index and
   write it as a part (DIR/index/parts/NNNNN.index), one shard in memory at a
   time;
3. **merge** the parts' inverted lists into one on-disk list file
   (``faiss.contrib.ondisk.merge_ondisk``): the parts are memory-mapped, so
   neither building nor searching ever holds all the vectors in memory.

A vector's id is its place: ``shard << 32 | row`` (row in the shard's Parquet
order, which the .npy files share), so a hit leads straight to its shard row
and tar member without a table of ids.

Files in the index folder: ``index.json`` (what was indexed, with the
embeddings' provenance), ``image.index`` (the merged index) and
``image.ivfdata`` (its inverted lists; the index names it by absolute path, so
move the folder only by building it again). The parts are deleted once merged.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from paircurate.transforms.embeddings.provenance import EmbeddingProvenance
from paircurate.transforms.output.storage import Files
from paircurate.transforms.output.store import OutputLayout

log = logging.getLogger(__name__)

INDEX_FORMAT = 1
INFO_NAME = "index.json"
INDEX_NAME = "image.index"
DATA_NAME = "image.ivfdata"
ROW_BITS = 32
EMBEDDINGS = "img_emb"


class SearchIndexError(ValueError):
    """No index can be built or read here; the message says what to do."""


@dataclass(frozen=True)
class IndexConfig:
    """How the index is built and searched.

    ``clusters`` is the number of inverted lists (0: about 4 x sqrt(n), and at
    most one per 39 training vectors, faiss's minimum points per centroid);
    ``probes`` how many of them a query visits; ``train_size`` the most vectors
    the quantizer is trained on.
    """

    clusters: int = 0
    probes: int = 32
    train_size: int = 100_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.clusters < 0 or self.probes < 1 or self.train_size < 1:
            raise SearchIndexError("clusters must be 0 or more, probes and train_size at least 1")


@dataclass(frozen=True)
class ShardEmbeddings:
    """One shard's image embeddings file and how many vectors it holds."""

    shard: int
    path: str
    rows: int
    dim: int


def row_id(shard: int, row: int) -> int:
    return (shard << ROW_BITS) | row


def split_id(identifier: int) -> tuple[int, int]:
    """(shard, row) of an id."""
    return identifier >> ROW_BITS, identifier & ((1 << ROW_BITS) - 1)


def cluster_count(vectors: int, asked: int = 0, trained_on: int | None = None) -> int:
    """``asked``, or about 4 x sqrt(vectors), with at least 39 training vectors for each."""
    if asked:
        return max(1, min(asked, vectors))
    trained_on = vectors if trained_on is None else min(vectors, trained_on)
    return max(1, min(int(4 * math.sqrt(vectors)), trained_on // 39))


def _npy_shape(files: Files, path: str) -> tuple[int, ...]:
    with files.open_read(path) as stream:
        major, _ = np.lib.format.read_magic(stream)
        formats = np.lib.format
        read_header = formats.read_array_header_1_0 if major == 1 else formats.read_array_header_2_0
        shape, _, _ = read_header(stream)
    return shape


def read_vectors(files: Files, path: str) -> np.ndarray:
    """A shard's embeddings as float32, each row scaled to unit length (float16 is not quite)."""
    with files.open_read(path) as stream:
        vectors = np.load(stream).astype(np.float32)
    if vectors.size:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.where(norms > 0, norms, 1)
    return vectors


def shard_embeddings(layout: OutputLayout) -> list[ShardEmbeddings]:
    """Every shard's image embeddings of a run with --write-embeddings, in shard order."""
    pattern = layout.embeddings(EMBEDDINGS, "*")
    found = []
    for info in layout.files.match(pattern):
        stem = info.path.rsplit("/", 1)[-1].removeprefix(f"{EMBEDDINGS}_").removesuffix(".npy")
        if not stem.isdigit():
            continue
        shape = _npy_shape(layout.files, info.path)
        rows = shape[0] if shape else 0
        dim = shape[1] if len(shape) == 2 else 0
        found.append(ShardEmbeddings(int(stem), info.path, rows, dim))
    if not found:
        raise SearchIndexError(
            f"{layout.root} holds no image embeddings ({pattern}): run the job with "
            "--write-embeddings (and a --clip-model) to write them"
        )
    return sorted(found, key=lambda item: item.shard)


def training_sample(
    files: Files, shards: list[ShardEmbeddings], size: int, seed: int
) -> np.ndarray:
    """At most ``size`` vectors, drawn from every shard in proportion to its rows."""
    total = sum(shard.rows for shard in shards)
    share = min(1.0, size / total)
    rng = np.random.default_rng(seed)
    parts = []
    for shard in shards:
        if not shard.rows:
            continue
        vectors = read_vectors(files, shard.path)
        take = min(shard.rows, max(1, round(shard.rows * share)))
        parts.append(vectors[np.sort(rng.choice(shard.rows, take, replace=False))])
    return np.concatenate(parts)


def trained_index(sample: np.ndarray, clusters: int, seed: int = 0) -> faiss.Index:
    """An empty IVF-Flat inner-product index with its quantizer trained on ``sample``."""
    dim = sample.shape[1]
    index = faiss.index_factory(dim, f"IVF{clusters},Flat", faiss.METRIC_INNER_PRODUCT)
    faiss.extract_index_ivf(index).cp.seed = seed
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def _vectors_by_shard(files: Files, shards: list[ShardEmbeddings]) -> Iterator[tuple[int, Any]]:
    for shard in shards:
        if shard.rows:
            yield shard.shard, read_vectors(files, shard.path)


def build_index(
    layout: OutputLayout,
    folder: str,
    provenance: EmbeddingProvenance | None,
    config: IndexConfig = IndexConfig(),
) -> dict[str, Any]:
    """Build the index of ``layout``'s run into the local ``folder``; returns index.json."""
    shards = shard_embeddings(layout)
    dims = {shard.dim for shard in shards if shard.rows}
    total = sum(shard.rows for shard in shards)
    if not total:
        raise SearchIndexError(f"the embeddings in {layout.root} hold no vectors: nothing was kept")
    if len(dims) != 1:
        raise SearchIndexError(f"the shards' embeddings differ in width ({sorted(dims)})")
    target = Path(folder)
    parts = target / "parts"
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True)
    clusters = cluster_count(total, config.clusters, config.train_size)
    sample = training_sample(layout.files, shards, config.train_size, config.seed)
    empty = trained_index(sample, clusters, config.seed)
    del sample
    names = []
    for shard, vectors in _vectors_by_shard(layout.files, shards):
        part = faiss.clone_index(empty)
        ids = row_id(shard, 0) + np.arange(len(vectors), dtype=np.int64)
        part.add_with_ids(vectors, ids)
        name = str(parts / f"{shard:05d}.index")
        faiss.write_index(part, name)
        names.append(name)
        log.info("indexed shard %05d (%d vectors)", shard, len(vectors))
    merged = faiss.clone_index(empty)
    data = (target / DATA_NAME).resolve()
    data.unlink(missing_ok=True)
    from faiss.contrib.ondisk import merge_ondisk

    merge_ondisk(merged, names, str(data))
    faiss.write_index(merged, str(target / INDEX_NAME))
    shutil.rmtree(parts)
    info = {
        "format": INDEX_FORMAT,
        "run": layout.root,
        "embeddings": EMBEDDINGS,
        "vectors": int(merged.ntotal),
        "dim": int(dims.pop()),
        "shards": len(shards),
        "index": f"IVF{clusters},Flat (inner product), merged on disk",
        "clusters": clusters,
        "probes": min(config.probes, clusters),
        "trained_on": min(total, config.train_size),
        "provenance": provenance.to_json() if provenance else None,
    }
    (target / INFO_NAME).write_text(json.dumps(info, indent=2))
    return info


class SearchIndex:
    """A built index, memory-mapped: ``search`` answers top-k by cosine similarity."""

    def __init__(self, folder: str):
        path = Path(folder)
        if not (path / INFO_NAME).is_file() or not (path / INDEX_NAME).is_file():
            raise SearchIndexError(
                f"no index in {folder}: build it first with `paircurate index RUN_DIR`"
            )
        self.info = json.loads((path / INFO_NAME).read_text())
        if self.info.get("format") != INDEX_FORMAT:
            raise SearchIndexError(f"the index in {folder} is of another format: build it again")
        self.index = faiss.read_index(str(path / INDEX_NAME))
        self.index.nprobe = int(self.info["probes"])
        stored = self.info.get("provenance")
        self.provenance = EmbeddingProvenance.from_json(stored) if stored else None

    @property
    def dim(self) -> int:
        return int(self.info["dim"])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (queries, k) best first; id -1 where fewer than k were found."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        return self.index.search(queries, k)
