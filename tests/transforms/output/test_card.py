"""The dataset card: croissant.json that mlcroissant validates and reads, DATASET_CARD.md."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from paircurate.pipeline.filesystem import FILES
from paircurate.pipeline.output.write_outputs import stats_document
from paircurate.schemas.config import CardConfig, ClipConfig, InputConfig, JobConfig
from paircurate.schemas.records import ledger_schema
from paircurate.transforms.output.card import UNSTATED, card_facts
from paircurate.transforms.output.indexes import ShardFile
from paircurate.transforms.output.ledger import merge_summaries, summarize_shard
from paircurate.transforms.output.publish import write_card, write_wids_index
from paircurate.transforms.output.store import OutputLayout, write_parquet

SCHEMA = ledger_schema()
PROVENANCE = {"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "checkpoint_sha256": None}


def ledger_rows(shard: str, offset: int) -> list[dict]:
    """Six rows of a shard: four kept (en, en, de, fr), a 404 and a near duplicate."""
    rows = []
    for i, (status, reason, language) in enumerate([
        ("kept", None, "en"), ("kept", None, "en"), ("kept", None, "de"), ("kept", None, "fr"),
        ("failed", "download_http_404", "en"), ("dropped", "near_duplicate", "de"),
    ]):  # fmt: skip
        uid = f"{offset + i:032x}"
        kept = status == "kept"
        rows.append({
            "uid": uid, "url": f"https://example.com/{uid}.jpg", "caption": f"a photo {i}",
            "language": language, "status": status, "reason": reason, "chunk": int(shard),
            "shard": shard if kept else None, "key": uid if kept else None,
            "clip_score": 0.31 if kept else None, "source": "/data/laion/part-0.parquet",
        })  # fmt: skip
    return rows


def options(**card) -> dict:
    config = JobConfig(
        inputs=InputConfig(input=("/data/laion/part-0.parquet", "/data/cc/urls.tsv")),
        clip=ClipConfig(clip_model="ViT-B-32", clip_threshold=0.28),
        card=CardConfig(**card),
    )
    return dataclasses.asdict(config)


@pytest.fixture
def run(tmp_path) -> tuple[OutputLayout, dict]:
    """A run folder with two shards' Parquet and ledger parts, its stats and wids index."""
    layout = OutputLayout(FILES, str(tmp_path / "laion-mini"))
    summaries = []
    for index, shard in enumerate(("00000", "00001")):
        rows = ledger_rows(shard, 100 * index)
        write_parquet(FILES, layout.ledger_part(shard), rows, SCHEMA)
        kept = [row for row in rows if row["status"] == "kept"]
        write_parquet(FILES, layout.shard_parquet(shard), kept, SCHEMA)
        summaries.append(summarize_shard(shard, rows, 4000, 10240))
    card = {
        "dataset_name": "laion-mini",
        "dataset_license": "CC-BY-4.0",
        "source_license": ("part-0.parquet=CC-BY-4.0",),
        "dataset_url": "https://example.org/laion-mini",
        "dataset_creator": "Example Lab",
    }
    run_info = {"options": options(**card), "versions": {"paircurate": "0.1.0"},
                "clip_provenance": PROVENANCE}  # fmt: skip
    stats = stats_document(merge_summaries(summaries), run_info)
    write_wids_index(layout, {"00000": ShardFile(4, 10240), "00001": ShardFile(4, 10240)}, "x")
    return layout, stats


def test_croissant_validates_and_its_record_sets_read_the_runs_files(run):
    mlc = pytest.importorskip("mlcroissant")
    layout, stats = run
    write_card(layout, stats, SCHEMA, "2026-01-31")
    dataset = mlc.Dataset(jsonld=layout.croissant_json)
    issues = dataset.metadata.ctx.issues
    assert not issues.errors and not issues.warnings
    samples = list(dataset.records("samples"))
    assert sorted(r["samples/uid"].decode() for r in samples) == sorted(
        f"{n:032x}" for n in (0, 1, 2, 3, 100, 101, 102, 103)
    )
    assert len(list(dataset.records("ledger"))) == stats["rows_in"] == 12
    document = json.loads(Path(layout.croissant_json).read_text())
    assert document["license"] == "CC-BY-4.0" and document["version"] == "1.0.0"
    assert document["isBasedOn"] == [
        {"@type": "sc:CreativeWork", "name": "/data/laion/part-0.parquet", "license": "CC-BY-4.0"},
        {"@type": "sc:CreativeWork", "name": "/data/cc/urls.tsv", "license": UNSTATED},
    ]
    (index,) = [item for item in document["distribution"] if item["@id"] == "wids-index"]
    assert index["contentUrl"] == "shards/shardindex.json" and len(index["sha256"]) == 64
    assert document["inLanguage"] == ["en", "de", "fr"]


def test_responsible_ai_fields_say_what_the_run_did(run):
    layout, stats = run
    write_card(layout, stats, SCHEMA, "2026-01-31")
    document = json.loads(Path(layout.croissant_json).read_text())
    steps = document["rai:dataPreprocessingProtocol"]
    dedup = next(step for step in steps if step.startswith("Deduplication"))
    assert "near_duplicate: 2" in dedup and "--phash-max-distance 6" in dedup
    fetch = next(step for step in steps if step.startswith("Downloading"))
    assert "download_http_404: 2" in fetch
    assert "2 of 12 rows failed" in document["rai:dataCollectionMissingData"]
    assert "TDMRep" in document["rai:dataCollection"]
    assert "robots.txt" not in document["rai:dataCollection"]  # off by default: not honoured
    tools = document["rai:machineAnnotationTools"]
    assert tools == [
        "caption language: fasttext language identifier",
        "CLIP score: open_clip ViT-B-32 (laion2b_s34b_b79k)",
    ]


def test_the_markdown_card_has_sources_filters_languages_opt_outs_model_and_files(run):
    layout, stats = run
    write_card(layout, stats, SCHEMA, "2026-01-31")
    text = Path(layout.dataset_card).read_text()
    assert text.startswith("# laion-mini\n")
    assert "| /data/laion/part-0.parquet | CC-BY-4.0 |" in text
    assert f"| /data/cc/urls.tsv | {UNSTATED} |" in text
    assert "| `near_duplicate` | 2 |" in text and "| --clip-threshold | 0.28 |" in text
    assert "| en | 4 | 50.0% |" in text and "| fr | 2 | 25.0% |" in text
    assert "| TDMRep | yes | --respect-tdmrep | 0 |" in text
    assert "| pretrained | laion2b_s34b_b79k |" in text
    assert "| `shards/shardindex.json` |" in text and "| `clip_score` | float |" in text
    assert "removed.parquet" not in text.split("## Files")[1].split("### Fields")[0]


def test_defaults_name_the_folder_and_say_what_is_not_stated(run):
    layout, stats = run
    stats = {**stats, "options": options()}
    facts = card_facts(stats, SCHEMA, "laion-mini", "2026-01-31")
    assert (facts.name, facts.license, facts.url) == ("laion-mini", UNSTATED, "")
    assert facts.sources[0] == ("/data/laion/part-0.parquet", UNSTATED)
    text_only = {**stats, "options": {**stats["options"], "output": {"text_only": True}}}
    files = dict(card_facts(text_only, SCHEMA, "x", "2026-01-31").files)
    assert "metadata/*.parquet" in files and "shards/*.tar" not in files


def test_a_source_license_must_be_input_equals_license():
    with pytest.raises(ValueError, match="--source-license: 'urls.tsv' is not INPUT=LICENSE"):
        CardConfig(source_license=("urls.tsv",))
    assert CardConfig(source_license=(" a.tsv = MIT ",)).source_licenses() == {"a.tsv": "MIT"}


def test_stats_count_kept_rows_by_language(run):
    _, stats = run
    assert stats["languages"] == {"en": 4, "de": 2, "fr": 2}
    assert pq.read_schema(Path(run[0].shard_parquet("00000"))).names == SCHEMA.names
