"""What a run's dataset card says, gathered once from stats.json and the ledger's schema.

The card has two renderings: ``croissant.json`` (``transforms.output.croissant``)
for machines and catalogues, ``DATASET_CARD.md`` (``transforms.output.card_page``)
for people. Both are built from one ``CardFacts``, so they never disagree. The
facts come from stats.json, whose counts the Write step took from the ledger rows
it wrote (by status, by reason, kept rows by language) and whose options are the
run's, and from the ledger's Arrow schema (its columns and what each holds).
Nothing here reads a file: the caller passes what it read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from paircurate.schemas.codes import REASONS
from paircurate.schemas.records import LEDGER_COLUMNS

UNSTATED = "not stated"


@dataclass(frozen=True)
class Stage:
    """One filtering stage: its reasons share ``stage`` in schemas/codes.py, its options are
    the run's options of ``section``."""

    stage: str
    title: str
    section: str


STAGES = (
    Stage("read", "Reading the input lists", "inputs"),
    Stage("caption", "Caption rules and language", "caption"),
    Stage("balance", "Concept balancing", "balance"),
    Stage("dedup", "Deduplication", "dedup"),
    Stage("fetch", "Downloading and opt-out protocols", "download"),
    Stage("image", "Image decoding and size rules", "image"),
    Stage("compliance", "Removal lists and evaluation-set decontamination", "compliance"),
    Stage("clip", "CLIP score", "clip"),
)
SHARD_FILES = (
    ("shards/*.tar", "WebDataset shards: per sample KEY.<image>, KEY.txt (caption), KEY.json"),
    ("shards/*.parquet", "one Parquet per shard: the ledger rows of its samples, in tar order"),
    ("shards/sizes.json", "samples per shard, as open_clip_train reads it"),
    ("shards/shardindex.json", "the wids shard index (webdataset's indexed reader)"),
    ("shards/*.idx", "DALI's index of each non-empty tar (fn.readers.webdataset index_paths)"),
)
METADATA_FILES = (("metadata/*.parquet", "the rows that passed, ready to be downloaded"),)
RUN_FILES = (
    ("ledger/*.parquet", "every input row once: status, reason, detail and all measurements"),
    ("stats.json", "the run's counts, options, versions and scoring model"),
    ("report.html", "the quality report"),
    ("croissant.json", "this card as Croissant 1.0 JSON-LD, with the Responsible-AI fields"),
)
REMOVED_FILE = (
    "removed.parquet",
    "rows `paircurate remove` took out: uid, shard, key, list, entry",
)


@dataclass(frozen=True)
class Filter:
    """A stage as the card shows it: its options (flag, value) and rows removed per reason."""

    title: str
    options: tuple[tuple[str, str], ...]
    reasons: tuple[tuple[str, int, str], ...]

    @property
    def rows_removed(self) -> int:
        return sum(count for _, count, _ in self.reasons)


@dataclass(frozen=True)
class CardFacts:
    name: str
    description: str
    license: str
    url: str
    creator: str
    version: int
    date: str
    rows_in: int
    kept: int
    status: tuple[tuple[str, int], ...]
    sources: tuple[tuple[str, str], ...]
    filters: tuple[Filter, ...]
    languages: tuple[tuple[str, int], ...]
    opt_outs: tuple[Mapping[str, Any], ...]
    model: Mapping[str, Any] | None
    removals: tuple[Mapping[str, Any], ...]
    columns: tuple[tuple[str, pa.DataType, str], ...]
    generator: str
    text_only: bool = False

    @property
    def files(self) -> tuple[tuple[str, str], ...]:
        """(path or glob relative to the run folder, what it holds) of the card's files."""
        parts = METADATA_FILES if self.text_only else SHARD_FILES
        return (*parts, *RUN_FILES, *((REMOVED_FILE,) if self.removals else ()))


def option_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "none"
    return "none" if value is None or value == "" else str(value)


def _count(entry: Any) -> int:
    return int(entry["count"]) if isinstance(entry, Mapping) else int(entry or 0)


def stage_filters(stats: Mapping[str, Any]) -> tuple[Filter, ...]:
    """Every stage with its options and the rows each of its reasons removed (zeros too)."""
    options = stats.get("options") or {}
    reasons = stats.get("reason") or {}
    filters = []
    for stage in STAGES:
        values = options.get(stage.section) or {}
        shown = tuple(
            (f"--{name.replace('_', '-')}", option_text(value)) for name, value in values.items()
        )
        counted = tuple(
            (code, _count(reasons.get(code, 0)), reason.description)
            for code, reason in REASONS.items()
            if reason.stage == stage.stage
        )
        filters.append(Filter(stage.title, shown, counted))
    return tuple(filters)


def model_facts(stats: Mapping[str, Any]) -> dict[str, Any] | None:
    """The scoring model and its thresholds, or None when the run scored nothing."""
    clip = (stats.get("options") or {}).get("clip") or {}
    provenance = stats.get("clip_provenance")
    if not provenance:
        return None
    thresholds = {
        "--clip-threshold": clip.get("clip_threshold"),
        "--clip-threshold-by-lang": clip.get("clip_threshold_by_lang") or None,
        "--clip-keep-fraction": clip.get("clip_keep_fraction"),
    }
    return {
        **provenance,
        "thresholds": {flag: value for flag, value in thresholds.items() if value is not None},
        "keep_fraction_cut": stats.get("clip_keep_fraction_cut"),
    }


def ledger_columns(schema: pa.Schema) -> tuple[tuple[str, pa.DataType, str], ...]:
    """The schema's columns with what each holds; carried input columns say so."""
    described = {name: text for name, _, text in LEDGER_COLUMNS}
    return tuple(
        (item.name, item.type, described.get(item.name, "input column carried through"))
        for item in schema
    )


def card_facts(
    stats: Mapping[str, Any], schema: pa.Schema, folder_name: str, date: str
) -> CardFacts:
    """The facts of a run's card from its stats.json, its ledger schema, the name of its
    folder (the default name) and the date the card is written."""
    options = stats.get("options") or {}
    card = options.get("card") or {}
    licences = dict(item.partition("=")[::2] for item in card.get("source_license") or ())
    licences = {key.strip(): value.strip() for key, value in licences.items()}
    inputs = (options.get("inputs") or {}).get("input") or ()
    versions = stats.get("versions") or {}
    status = stats.get("status") or {}
    return CardFacts(
        name=card.get("dataset_name") or folder_name,
        description=card.get("dataset_description") or "",
        license=card.get("dataset_license") or UNSTATED,
        url=card.get("dataset_url") or "",
        creator=card.get("dataset_creator") or "",
        version=int(stats.get("version") or 1),
        date=date,
        rows_in=int(stats.get("rows_in") or 0),
        kept=int(stats.get("kept") or 0),
        status=tuple((name, _count(entry)) for name, entry in status.items()),
        sources=tuple((path, licence_of(path, licences)) for path in inputs),
        filters=stage_filters(stats),
        languages=tuple(
            sorted((stats.get("languages") or {}).items(), key=lambda i: (-i[1], i[0]))
        ),
        opt_outs=tuple((stats.get("compliance") or {}).get("respected") or ()),
        model=model_facts(stats),
        removals=tuple(stats.get("removals") or ()),
        columns=ledger_columns(schema),
        generator=f"paircurate {versions.get('paircurate', '')}".strip(),
        text_only=bool((options.get("output") or {}).get("text_only")),
    )


def licence_of(path: str, licences: Mapping[str, str]) -> str:
    """The licence given for an input: by the --input value as given, else by its file name."""
    if path in licences:
        return licences[path]
    for given, licence in licences.items():
        if path.endswith("/" + given.lstrip("./")) or path.rsplit("/", 1)[-1] == given:
            return licence
    return UNSTATED


def summary_text(facts: CardFacts) -> str:
    """The generated description: what the dataset is, in one paragraph."""
    languages = ", ".join(code for code, _ in facts.languages[:8]) or "none"
    text = (
        f"{facts.kept:,} image/alt-text pairs curated by {facts.generator} from {facts.rows_in:,} "
        f"input rows listed in {len(facts.sources)} source(s), for CLIP-style contrastive "
        f"pretraining. Images were downloaded from the listed URLs, checked, resized and "
        f"deduplicated; every input row is accounted for in the ledger with its reason. "
        f"Main caption languages: {languages}."
    )
    return f"{facts.description}\n\n{text}" if facts.description else text
