"""Queries against a run's index: embed a caption or an image, find the nearest images.

A query is embedded by the model that made the run's embeddings (the caller
loads it and checks its provenance first, ``provenance.require_same_model``);
``find`` asks the index and turns each hit's id into its shard row (uid,
caption, CLIP score, key) and, if asked, a thumbnail read from the shard's tar.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from paircurate.transforms.embeddings.index import SearchIndex, split_id
from paircurate.transforms.output.shards import read_members, shard_name
from paircurate.transforms.output.store import OutputLayout
from paircurate.transforms.scoring.clip import ClipScorer

HIT_COLUMNS = ("uid", "caption", "key", "image_format", "clip_score", "url")


@dataclass
class SearchHit:
    """One result: its rank (1 is best), cosine similarity to the query, and its shard row."""

    rank: int
    score: float
    shard: str
    row: int
    uid: str
    caption: str | None
    key: str | None
    image_format: str | None
    clip_score: float | None
    url: str | None
    thumbnail: str | None = None  # a data: URI


@dataclass(frozen=True)
class Query:
    """What was asked: a caption, or an image (its bytes and a name to show for it)."""

    text: str | None = None
    image: bytes | None = None
    image_name: str | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.image is None):
            raise ValueError("a query is a caption or an image: give exactly one")

    @property
    def kind(self) -> str:
        return "text-to-image" if self.text is not None else "image-to-image"

    @property
    def label(self) -> str:
        return self.text if self.text is not None else (self.image_name or "an image")


def embed_query(scorer: ClipScorer, query: Query) -> np.ndarray:
    """The query's L2-normalised embedding (float32, (1, embed_dim)) by ``scorer``'s model."""
    if query.text is not None:
        tokens, _ = scorer.tokenize([query.text])
        return scorer.embed_texts(tokens)
    try:
        with Image.open(io.BytesIO(query.image)) as opened:
            image = opened.convert("RGB")
    except Exception as error:  # noqa: BLE001 - any decoder error means: not an image
        raise ValueError(f"the query image {query.label} cannot be decoded: {error}") from error
    pixels = scorer.preprocess_images([image])
    return scorer.embed_images(torch.as_tensor(pixels))


def find(
    index: SearchIndex,
    layout: OutputLayout,
    vector: np.ndarray,
    k: int,
    thumbnail: Callable[[bytes], str | None] | None = None,
) -> list[SearchHit]:
    """The ``k`` nearest images to ``vector``, best first, with their shard rows.

    ``thumbnail`` turns an image's bytes into what ``SearchHit.thumbnail`` holds
    (None: no tar is read).
    """
    scores, ids = index.search(vector, k)
    found = [(float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]
    places = [split_id(identifier) for _, identifier in found]
    rows = shard_rows(layout, places)
    hits = [
        SearchHit(
            rank=rank,
            score=score,
            shard=shard_name(shard),
            row=row,
            **{name: rows[(shard, row)].get(name) for name in HIT_COLUMNS},
        )
        for rank, ((score, _), (shard, row)) in enumerate(zip(found, places, strict=True), 1)
    ]
    if thumbnail is not None:
        add_thumbnails(layout, hits, thumbnail)
    return hits


def shard_rows(
    layout: OutputLayout, places: list[tuple[int, int]]
) -> dict[tuple[int, int], dict[str, Any]]:
    """The HIT_COLUMNS of each (shard, row), one Parquet read per shard."""
    by_shard: dict[int, list[int]] = defaultdict(list)
    for shard, row in places:
        by_shard[shard].append(row)
    found = {}
    for shard, rows in by_shard.items():
        with layout.files.open_read(layout.shard_parquet(shard_name(shard))) as stream:
            parquet = pq.ParquetFile(stream)
            columns = [name for name in HIT_COLUMNS if name in parquet.schema_arrow.names]
            table = parquet.read(columns=columns).take(pa.array(rows, pa.int64()))
        for row, values in zip(rows, table.to_pylist(), strict=True):
            found[(shard, row)] = values
    return found


def add_thumbnails(
    layout: OutputLayout, hits: list[SearchHit], thumbnail: Callable[[bytes], str | None]
) -> None:
    """Each hit's thumbnail from its shard's tar (one tar opened per shard)."""
    by_shard: dict[str, list[SearchHit]] = defaultdict(list)
    for hit in hits:
        if hit.key and hit.image_format:
            by_shard[hit.shard].append(hit)
    for shard, wanted in by_shard.items():
        names = [f"{hit.key}.{hit.image_format}" for hit in wanted]
        with layout.files.open_read(layout.shard_tar(shard)) as stream:
            for hit, (_, data) in zip(wanted, read_members(stream, names), strict=True):
                hit.thumbnail = thumbnail(data)
