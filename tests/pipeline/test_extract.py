"""The Extract step in Beam: ``paircurate extract``, ``run`` from a crawl, and the input plan."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest
from conftest import TIMEOUT_S, read_ledger, shard_files

from paircurate.pipeline.cli import main
from paircurate.pipeline.extract.command import run_extract
from paircurate.pipeline.extract.plan import crawl_format, plan_crawl
from paircurate.pipeline.run import run
from paircurate.schemas.config import ExtractConfig, InputConfig
from paircurate.synthweb import SyntheticWeb, WebMix
from paircurate.synthweb.crawl import Crawl, write_crawl
from paircurate.transforms.ingest.inputs import InputError

BASE = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def crawl(tmp_path_factory) -> Crawl:
    web = SyntheticWeb(120, seed=8, mix=WebMix())
    return write_crawl(web, BASE, str(tmp_path_factory.mktemp("crawl")), files=3, seed=8)


def usable(crawl: Crawl, view: str) -> set[tuple]:
    truth = pq.read_table(crawl.truth).to_pylist()
    return {
        (t["crawl_file"], t["record_offset"], t["image_index"], t["url"], t["caption"])
        for t in truth
        if t["view"] == view and t["reason"] is None and t["record_reason"] is None
    }


def found(rows: list[dict]) -> set[tuple]:
    return {
        (
            os.path.basename(r["crawl_file"]),
            r["record_offset"],
            r["image_index"],
            r["url"],
            r["caption"],
        )
        for r in rows
    }


# --- the plan ------------------------------------------------------------------------------


def plan(inputs: list[str], **options):
    return plan_crawl(InputConfig(input=tuple(inputs)), ExtractConfig(**options))


def test_the_format_follows_the_names_or_the_flag(crawl):
    auto = ExtractConfig()
    assert crawl_format(InputConfig(input=crawl.wat_files), auto) == "wat"
    assert crawl_format(InputConfig(input=(crawl.folder + "/warc.paths.gz",)), auto) == "warc"
    assert crawl_format(InputConfig(input=("pairs.parquet",)), auto) is None
    assert crawl_format(InputConfig(input=("x/*",)), ExtractConfig(input_format="warc")) == "warc"
    with pytest.raises(InputError, match="--input-format"):
        crawl_format(InputConfig(input=("a.warc.gz", "b.parquet")), auto)


def test_paths_lists_globs_and_folders(crawl, tmp_path):
    by_list = plan([crawl.folder + "/wat.paths.gz"])
    assert by_list.files == crawl.wat_files and by_list.fmt == "wat"
    listing = tmp_path / "mine.paths"
    listing.write_text("# a comment\n\nSYNTH-08-00001.warc.gz\n/abs/olute.warc.gz\n")
    prefixed = plan([str(listing)], input_format="warc", crawl_prefix=crawl.folder + "/")
    assert prefixed.files == (crawl.warc_files[1], "/abs/olute.warc.gz")
    assert plan([crawl.folder + "/*.warc.gz"], crawl_max_files=2).files == crawl.warc_files[:2]
    assert plan([crawl.folder], input_format="warc").files == crawl.warc_files
    with pytest.raises(InputError, match="no WARC files"):
        plan([str(tmp_path / "none-*.warc.gz")])
    with pytest.raises(InputError, match="--keep-cols"):
        plan_crawl(InputConfig(input=crawl.warc_files, keep_cols=("x",)), ExtractConfig())


# --- paircurate extract --------------------------------------------------------------------


def test_extract_writes_the_pairs_the_truth_lists_and_its_ledger(crawl, tmp_path, capsys):
    output = tmp_path / "out"
    code = main(["extract", "--input", crawl.folder + "/wat.paths.gz", "--output", str(output)])
    assert code == 0 and "pairs:" in capsys.readouterr().out
    pairs = pq.read_table(output / "pairs").to_pylist()
    assert found(pairs) == usable(crawl, "wat")
    assert sorted(os.listdir(output / "pairs")) == [f"part-{n:06d}.parquet" for n in range(3)]
    ledger = pq.read_table(output / "extract_ledger").to_pylist()
    assert len(ledger) == len({row["uid"] for row in ledger})
    stats = json.loads((output / "stats.json").read_text())
    section = stats["extract"]
    assert section["pairs"] == len(pairs) and section["ledger_rows"] == len(ledger)
    assert section["reason"]["extract_wat_json"]["count"] == 3  # one per file
    assert section["record_outcomes"]["failed"] == sum(
        1 for r in ledger if r["image_index"] is None
    )
    # The pairs are what `run` reads, provenance carried as any extra column.
    keep = "page_url,record_offset,record_id"
    curated = run(["--input", str(output / "pairs"), "--output", str(tmp_path / "run"),
                   "--text-only", "--keep-cols", keep])  # fmt: skip
    assert curated["rows_in"] == len(pairs) and "extract" not in curated
    assert {r["record_id"] for r in read_ledger(tmp_path / "run")} == {
        r["record_id"] for r in pairs
    }


def test_a_missing_file_of_a_paths_list_is_one_failed_row(crawl, tmp_path):
    listing = tmp_path / "warc.paths"
    listing.write_text(f"{crawl.warc_files[0]}\n{tmp_path}/gone.warc.gz\n")
    stats = run_extract(["--input", str(listing), "--output", str(tmp_path / "out")])
    ledger = pq.read_table(tmp_path / "out" / "extract_ledger").to_pylist()
    missing = [row for row in ledger if row["crawl_file"].endswith("gone.warc.gz")]
    assert [row["reason"] for row in missing] == ["extract_record_error"]
    assert stats["extract"]["files"] == 2 and stats["extract"]["pairs"] > 0


# --- run from a crawl ----------------------------------------------------------------------


def test_run_from_wat_files_carries_provenance_into_the_ledger(crawl, tmp_path):
    output = tmp_path / "run"
    stats = run(["--input", *crawl.wat_files, "--output", str(output), "--text-only"])
    ledger = read_ledger(output)
    assert stats["rows_in"] == stats["extract"]["pairs"] == len(ledger)
    assert found(ledger) == usable(crawl, "wat")
    assert all(row["source"] == row["crawl_file"] for row in ledger)
    assert stats["stages"]["extract"]["rows"] == len(ledger)
    assert os.listdir(output / "extract_ledger")


@pytest.mark.slow
def test_from_warc_files_to_shards(web, server, tmp_path):
    """The end to end path: WARC files of the served web's pages -> pairs -> downloads -> shards."""
    crawl = write_crawl(web, server.base_url, str(tmp_path / "crawl"), files=2, seed=11)
    output = tmp_path / "out"
    stats = run([
        "--input", crawl.folder + "/warc.paths.gz", "--output", str(output),
        "--allow-private-networks", "--timeout", str(TIMEOUT_S), "--min-image-size", "64",
        "--shard-size", "64", "--clip-model", "paircurate-ref",
    ])  # fmt: skip
    ledger = read_ledger(output)
    assert (
        stats["rows_in"] == stats["extract"]["pairs"] == len(ledger) == len(usable(crawl, "warc"))
    )
    kept = [row for row in ledger if row["status"] == "kept"]
    assert len(kept) > 40 and stats["kept"] == len(kept)
    assert {row["url"].split("?")[0].rsplit("/", 1)[0] for row in kept} == {
        server.base_url + "/img"
    }
    samples = {}
    for tar in shard_files(output, ".parquet"):
        for row in pq.read_table(tar).to_pylist():
            samples[row["key"]] = row
    assert set(samples) == {row["uid"] for row in kept}
    assert all(row["page_url"] and row["record_id"] for row in samples.values())
