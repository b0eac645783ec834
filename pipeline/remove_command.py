"""``paircurate remove RUN --exclude LIST ... | --diff REMOVED_PARQUET``: the launcher.

It checks everything it can before a file changes: the run is finished, the
lists parse to the last line (a takedown list applied in part is worse than
an error), their kinds can match what the run recorded, and no other removal
is half done. Then it runs one removal per version (``pipeline.compliance.
remove``): one for lists; for a diff, one per version of it this run lacks.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

import pyarrow.parquet as pq

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.compliance.remove import build_removal
from paircurate.pipeline.run import make_pipeline
from paircurate.pipeline.runners import remote_workers
from paircurate.schemas.config import ConfigError
from paircurate.transforms.compliance.lists import (
    BEFORE_DOWNLOAD,
    EXACT_DIGESTS,
    ExclusionListError,
    ListSpec,
    read_entries,
)
from paircurate.transforms.compliance.removal import PUBLISHED, diff_matches
from paircurate.transforms.compliance.rules import Sources
from paircurate.transforms.output.removed import delete_tree
from paircurate.transforms.output.rewrite import PartRewriter
from paircurate.transforms.output.store import OutputLayout

log = logging.getLogger(__name__)

REQUEST = "request.json"


def add_remove_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", metavar="RUN", help="the --output folder of a finished run")
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="[KIND[/DISTANCE]:]FILE",
        help="a removal list, as `paircurate run --exclude` takes it (url, domain, sha256, md5, "
        "sha1, phash, pdq); repeatable",
    )
    parser.add_argument(
        "--diff",
        default="",
        metavar="REMOVED_PARQUET",
        help="apply a published removed.parquet instead: every version of it this run lacks",
    )


def read_stats(layout: OutputLayout) -> dict[str, Any]:
    if not layout.files.exists(layout.stats_json):
        raise ConfigError(f"RUN: {layout.stats_json} not found; remove works on a finished run")
    return json.loads(fs.read_bytes(layout.stats_json))


def ledger_parts(layout: OutputLayout) -> list[str]:
    """The names of the run's ledger parts (NNNNN), sorted."""
    found = fs.match(fs.join(layout.ledger, "part-*.parquet"))
    if not found:
        raise ConfigError(f"RUN: no ledger parts in {layout.ledger}")
    return [path.rsplit("part-", 1)[1].removesuffix(".parquet") for path in found]


def list_kinds(sources: Sources) -> set[str]:
    """The kinds of entry the lists hold, reading each to its last line."""
    kinds: set[str] = set()
    for spec in sources.lists:
        if not fs.exists(spec.path):
            raise ConfigError(f"--exclude: {spec.path} not found")
        try:
            with fs.open_read(spec.path) as stream:
                kinds.update(entry.kind for entry in read_entries(stream, spec))
        except ExclusionListError as error:
            raise ConfigError(f"--exclude: {error}") from None
    return kinds


def check_kinds(kinds: set[str], columns: list[str], text_only: bool) -> None:
    """Refuse lists whose kinds cannot meet what the run recorded."""
    if text_only and kinds - set(BEFORE_DOWNLOAD):
        raise ConfigError(
            "a text-only run has no images: only url and domain entries can match its rows, "
            f"and the lists hold {', '.join(sorted(kinds - set(BEFORE_DOWNLOAD)))} entries"
        )
    missing = sorted(kind for kind in kinds & set(EXACT_DIGESTS) if kind not in columns)
    if missing:
        raise ConfigError(
            f"the run's ledger has no {', '.join(missing)} column (an older paircurate wrote "
            "it), so those entries cannot be matched; rerun the job to record them"
        )


def read_diff(path: str) -> list[dict[str, Any]]:
    if not fs.exists(path):
        raise ConfigError(f"--diff: {path} not found")
    with fs.open_read(path) as stream:
        table = pq.read_table(stream)
    missing = sorted(set(PUBLISHED.names) - set(table.column_names))
    if missing:
        raise ConfigError(f"--diff: {path} is not a removed.parquet (no {', '.join(missing)})")
    return table.select(PUBLISHED.names).to_pylist()


def claim(layout: OutputLayout, version: int, request: dict[str, Any]) -> None:
    """Write the request down, or refuse a request other than the one under way.

    A request of a version the run already has was finished but not cleared: it goes.
    """
    for info in layout.files.match(layout.files.join(layout.removing, "v*", REQUEST)):
        under_way = json.loads(fs.read_bytes(info.path))
        if int(under_way.get("version", 0)) < version:
            delete_tree(layout, info.path.rsplit("/", 1)[0])
        elif under_way != {**request, "version": version}:
            raise ConfigError(
                f"another removal of this run is half done ({under_way}); finish it by running "
                "the same `paircurate remove` again"
            )
    path = layout.files.join(layout.removal_folder(version), REQUEST)
    fs.write_bytes(path, json.dumps({**request, "version": version}).encode())


def removal_jobs(layout, stats, lists, diff) -> list[tuple[int, dict, Any]]:
    """(version, request, matching) of each removal to run, checked."""
    version = int(stats.get("version") or 1)
    text_only = bool(stats["options"]["output"].get("text_only"))
    if lists:
        sources = Sources(tuple(ListSpec.parse(spec) for spec in lists), (), 0)
        with fs.open_read(fs.join(layout.ledger, f"part-{ledger_parts(layout)[0]}.parquet")) as f:
            columns = pq.read_schema(f).names
        check_kinds(list_kinds(sources), columns, text_only)
        return [(version + 1, {"lists": list(lists)}, sources)]
    rows = read_diff(diff)
    versions = sorted({int(row["version"]) for row in rows if int(row["version"]) > version})
    if not versions:
        log.info("the run is at version %d: %s holds nothing newer", version, diff)
    return [(v, {"diff": diff}, diff_matches(rows, v)) for v in versions]


def check_reach(pipeline, stats: dict[str, Any], paths: list[str]) -> None:
    """Refuse local paths (the run, the lists) with workers that may not share this disk,
    unless the run was made with --allow-local-paths (a shared mount)."""
    local = [path for path in paths if "://" not in path or path.startswith("file://")]
    reason = remote_workers(pipeline.runner, pipeline.options) if local else None
    if reason and not stats["options"]["output"].get("allow_local_paths"):
        raise ConfigError(
            f"{', '.join(local)}: a local path, but {reason}; use storage every worker "
            "reaches (gs://, s3://)"
        )


def remove(output: str, lists: list[str], diff: str, beam_args: list[str] = ()) -> dict:
    """Apply removal lists or a published diff to the finished run in ``output``; returns the
    run's new stats.json."""
    if bool(lists) == bool(diff):
        raise ConfigError("remove: give removal lists (--exclude) or a diff (--diff), one of them")
    fs.configure(list(beam_args))
    layout = OutputLayout(fs.FILES, output)
    stats = read_stats(layout)
    text_only = bool(stats["options"]["output"].get("text_only"))
    raw = layout.raw_store_named(stats["raw_shards"]) if stats.get("raw_shards") else None
    for version, request, matching in removal_jobs(layout, stats, lists, diff):
        pipeline = make_pipeline(list(beam_args))
        check_reach(pipeline, stats, [output, *(spec.path for spec in specs_of(matching))])
        claim(layout, version, request)
        rewriter = PartRewriter(layout, raw, version, text_only)
        build_removal(pipeline, rewriter, ledger_parts(layout), request, matching)
        pipeline.run().wait_until_finish()
        stats = read_stats(layout)
    return stats


def specs_of(matching) -> tuple[ListSpec, ...]:
    return matching.lists if isinstance(matching, Sources) else ()


def summary_text(stats: dict[str, Any]) -> str:
    removal = (stats.get("removals") or [{}])[-1]
    return "\n".join([
        f"version:  {stats.get('version', 1)}",
        f"removed:  {removal.get('samples_removed', 0)} samples "
        f"({removal.get('rows_changed', 0)} ledger rows now excluded)",
        f"kept:     {stats['kept']}",
    ])  # fmt: skip
