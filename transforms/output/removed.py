"""The end of a removal: the published diff, the run's counts and indexes, its card.

Once every part is rewritten (``transforms.output.rewrite``), the removal's
per-part records become the rows of this version in ``removed.parquet``
(appended to the earlier versions'), stats.json takes the new counts and
version, sizes.json and the wids index the new shard sizes, and the card is
written again. What still shows removed samples goes: the report (written
again afterwards) and a search index built from the old shards (built again
with ``paircurate index``). The removal's folder is deleted last.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from paircurate.transforms.compliance.removal import PUBLISHED, count_changes, stats_after
from paircurate.transforms.output import storage
from paircurate.transforms.output.indexes import ShardFile
from paircurate.transforms.output.publish import folder_name, write_card, write_wids_index
from paircurate.transforms.output.rewrite import PartOutcome, read_table
from paircurate.transforms.output.store import OutputLayout

DERIVED_FOLDERS = ("index", "search")
"""What ``paircurate index`` and ``search`` build in the run folder from its shards."""


def removal_records(layout: OutputLayout, version: int) -> pa.Table:
    """Every record of the removal that makes ``version``, in part order."""
    parts = layout.files.match(layout.files.join(layout.removal_folder(version), "part-*.parquet"))
    tables = [read_table(layout, info.path) for info in parts]
    return pa.concat_tables(tables) if tables else pa.table({})


def publish_diff(layout: OutputLayout, records: pa.Table) -> None:
    """removed.parquet: the earlier versions' rows, then this removal's."""
    tables = []
    if layout.files.exists(layout.removed_parquet):
        tables.append(read_table(layout, layout.removed_parquet).cast(PUBLISHED))
    if records.num_rows:
        tables.append(records.select(PUBLISHED.names).cast(PUBLISHED))
    table = pa.concat_tables(tables) if tables else PUBLISHED.empty_table()
    storage.write_atomically(
        layout.files, layout.removed_parquet, lambda stream: pq.write_table(table, stream)
    )


def shard_sizes(layout: OutputLayout, outcomes: Iterable[PartOutcome]) -> dict[str, int]:
    """sizes.json with the rewritten shards' sample counts."""
    sizes = json.loads(storage.read_bytes(layout.files, layout.sizes_json))
    for outcome in outcomes:
        if outcome.shard_samples is not None:
            sizes[f"{outcome.part}.tar"] = outcome.shard_samples
    return sizes


def delete_tree(layout: OutputLayout, folder: str) -> None:
    files = layout.files
    found = [info.path for info in files.match(files.join(folder, "**"))]
    if found:
        files.delete(found)
    if files.exists(folder):
        files.delete([folder])


def finish_removal(
    layout: OutputLayout,
    version: int,
    outcomes: Iterable[PartOutcome],
    request: Mapping[str, Any],
    date: str,
) -> dict[str, Any]:
    """Publish the removal that makes ``version``; returns the new stats.json."""
    files, outcomes = layout.files, list(outcomes)
    records = removal_records(layout, version)
    rows = records.to_pylist()
    stats = json.loads(storage.read_bytes(files, layout.stats_json))
    removal = {
        **request,
        "version": version,
        "rows_changed": len(rows),
        "samples_removed": sum(1 for row in rows if row["old_status"] == "kept"),
        "image_bytes_removed": sum(int(row.get("image_bytes") or 0) for row in rows),
    }
    stats = stats_after(stats, count_changes(rows), removal)
    publish_diff(layout, records)
    text_only = bool(((stats.get("options") or {}).get("output") or {}).get("text_only"))
    if not text_only:
        sizes = shard_sizes(layout, outcomes)
        storage.write_bytes(files, layout.sizes_json, json.dumps(sizes, indent=1).encode())
        tars = {info.path.rsplit("/", 1)[-1]: info.size for info in
                files.match(files.join(layout.shards, "*.tar"))}  # fmt: skip
        shards = {name[:-4]: ShardFile(n, tars.get(name, 0)) for name, n in sizes.items()}
        write_wids_index(layout, shards, folder_name(layout))
    storage.write_bytes(files, layout.stats_json, json.dumps(stats, indent=2).encode())
    ledger = files.match(files.join(layout.ledger, "part-*.parquet"))
    with files.open_read(ledger[0].path) as stream:
        write_card(layout, stats, pq.read_schema(stream), date)
    if rows:
        for name in DERIVED_FOLDERS:
            delete_tree(layout, layout.path(name))
        if files.exists(layout.report_html):
            files.delete([layout.report_html])
    delete_tree(layout, layout.removing)
    return stats
