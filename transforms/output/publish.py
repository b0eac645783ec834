"""The files a finished run publishes beside its shards: the wids index and the dataset card.

Written last, once the shards and stats.json exist, by the Write step and again
by ``paircurate remove``; the paths come from ``OutputLayout``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from paircurate.transforms.output import storage
from paircurate.transforms.output.card import CardFacts, card_facts
from paircurate.transforms.output.card_page import card_markdown
from paircurate.transforms.output.croissant import croissant_document, file_object
from paircurate.transforms.output.indexes import ShardFile, wids_index
from paircurate.transforms.output.store import OutputLayout


def folder_name(layout: OutputLayout) -> str:
    return layout.root.rstrip("/").rsplit("/", 1)[-1] or "dataset"


def write_wids_index(layout: OutputLayout, shards: Mapping[str, ShardFile], name: str) -> bytes:
    """shards/shardindex.json for ``shards`` (name -> samples and tar size); returns its bytes."""
    data = json.dumps(wids_index(shards, name), indent=1).encode()
    storage.write_bytes(layout.files, layout.wids_index, data)
    return data


def published_objects(layout: OutputLayout, facts: CardFacts) -> list[dict[str, Any]]:
    """The single files the card lists with their checksums: the wids index, removed.parquet."""
    found = []
    files = layout.files
    if not facts.text_only and files.exists(layout.wids_index):
        data = storage.read_bytes(files, layout.wids_index)
        text = "the wids shard index (webdataset's indexed reader)"
        found.append(file_object("wids-index", "shards/shardindex.json", data, "application/json",
                                 text))  # fmt: skip
    if facts.removals and files.exists(layout.removed_parquet):
        data = storage.read_bytes(files, layout.removed_parquet)
        text = "rows `paircurate remove` took out: uid, shard, key, which list and entry"
        found.append(file_object("removed", "removed.parquet", data, "application/x-parquet",
                                 text))  # fmt: skip
    return found


def write_card(
    layout: OutputLayout, stats: Mapping[str, Any], schema: pa.Schema, date: str
) -> CardFacts:
    """croissant.json and DATASET_CARD.md of the run, as of ``date`` (ISO, the day written)."""
    facts = card_facts(stats, schema, folder_name(layout), date)
    document = croissant_document(facts, published_objects(layout, facts))
    files = layout.files
    storage.write_bytes(files, layout.croissant_json, json.dumps(document, indent=1).encode())
    storage.write_bytes(files, layout.dataset_card, card_markdown(facts).encode())
    return facts
