"""Input checks before any work, and reading every supported format through the job."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import read_ledger, run_job_on

from paircurate.pipeline.ingest.read import expand_inputs, plan_inputs
from paircurate.schemas.config import InputConfig
from paircurate.transforms.ingest.inputs import InputError, make_uid


def _write_formats(table: pa.Table, folder) -> list[str]:
    """The same rows as Parquet, CSV.gz, TSV and JSONL."""
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "a.parquet")
    with gzip.open(folder / "b.csv.gz", "wb") as stream:
        pacsv.write_csv(table, stream)
    lines = ["\t".join(table.column_names)]
    lines += ["\t".join(str(v) for v in row.values()) for row in table.to_pylist()]
    (folder / "c.tsv").write_text("\n".join(lines) + "\n")
    with open(folder / "d.jsonl", "w") as stream:
        for row in table.to_pylist():
            stream.write(json.dumps(row) + "\n")
    (folder / "README.txt").write_text("not an input file")
    return sorted(str(p) for p in folder.iterdir() if p.suffix != ".txt")


def _table() -> pa.Table:
    return pa.table(
        {
            "link": ["http://example.com/a.jpg", "https://example.com/b.png"],
            "text": ["a red circle", "2024"],
            "score": [0.5, 0.25],
        }
    )


def test_folders_and_globs_expand_to_input_files_only(tmp_path):
    files = _write_formats(_table(), tmp_path / "in")
    assert expand_inputs((str(tmp_path / "in"),)) == files
    assert expand_inputs((str(tmp_path / "in" / "*.tsv"),)) == [files[2]]
    with pytest.raises(InputError, match="no Parquet, CSV, TSV or JSONL files"):
        expand_inputs((str(tmp_path / "nothing-here"),))


def test_missing_column_names_the_flag_to_set(tmp_path):
    _write_formats(_table(), tmp_path / "in")
    with pytest.raises(InputError, match=r"\['url'\] not found.*--url-col"):
        plan_inputs(InputConfig(input=(str(tmp_path / "in" / "a.parquet"),), caption_col="text"))
    config = InputConfig(input=(str(tmp_path / "in"),), url_col="link", caption_col="text",
                         keep_cols=("nope",))  # fmt: skip
    with pytest.raises(InputError, match="nope"):
        plan_inputs(config)


def test_empty_and_unreadable_inputs_are_errors(tmp_path):
    (tmp_path / "empty.csv").write_text("url,caption\n")
    with pytest.raises(InputError, match="has no rows"):
        plan_inputs(InputConfig(input=(str(tmp_path / "empty.csv"),)))
    (tmp_path / "broken.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(InputError, match="broken.parquet: cannot read it as parquet"):
        plan_inputs(InputConfig(input=(str(tmp_path / "broken.parquet"),)))


def test_carried_columns_keep_their_type_unless_files_disagree(tmp_path):
    files = _write_formats(_table(), tmp_path / "in")
    typed = plan_inputs(
        InputConfig(input=(files[0],), url_col="link", caption_col="text", keep_cols=("score",))
    )
    assert typed.carried[0].type == pa.float64()
    mixed = plan_inputs(
        InputConfig(input=tuple(files), url_col="link", caption_col="text", keep_cols=("score",))
    )
    assert mixed.carried[0].type == pa.string()


def test_planning_opens_each_input_file_once(tmp_path, monkeypatch):
    from paircurate.pipeline import filesystem as fs

    files = _write_formats(_table(), tmp_path / "in")
    (tmp_path / "in" / "e.csv").write_text("link,text\n\n")  # a header and a blank line
    opened: list[str] = []
    real_open = fs.open_read

    def counting_open(path, gzipped=False):
        opened.append(path)
        return real_open(path, gzipped)

    monkeypatch.setattr(fs, "open_read", counting_open)
    config = InputConfig(input=(str(tmp_path / "in"),), url_col="link", caption_col="text")
    plan = plan_inputs(config)
    assert sorted(opened) == sorted(plan.files) == sorted([*files, str(tmp_path / "in" / "e.csv")])


def _check_pipeline_rows(plan, expected: list[tuple]) -> None:
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.testing.util import assert_that, equal_to

    from paircurate.pipeline.ingest.read import ReadInputs

    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        rows = pipeline | ReadInputs(plan)
        keys = rows | beam.Map(lambda r: (r["source"], r["row_number"], r["uid"], r.get("caption")))
        assert_that(keys, equal_to(expected))


def _read_whole(plan) -> list[tuple]:
    from paircurate.pipeline.ingest.read import row_from_parsed
    from paircurate.transforms.ingest.inputs import detect_format, read_rows

    found = []
    for path in plan.files:
        with open(path, "rb") as stream:
            for parsed in read_rows(stream, detect_format(path)[0], plan.columns):
                if parsed.parse_error:
                    uid, caption = make_uid(None, f"{path}:{parsed.row_number}"), None
                else:
                    row = row_from_parsed(parsed.values, plan.columns)
                    uid, caption = row["uid"], row["caption"]
                found.append((path, parsed.row_number, uid, caption))
    return found


def test_large_files_split_into_pieces_read_the_same_rows(tmp_path):
    n = 120
    table = pa.table({
        "link": [f"http://example.com/{i}.jpg" for i in range(n)],
        "text": [f"caption {i}\nwith a second line" if i % 7 == 0 else f"c {i}" for i in range(n)],
    })  # fmt: skip
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(table, folder / "a.parquet", row_group_size=10)
    rows = table.to_pylist()
    lines = ["link\ttext"] + [f"{r['link']}\t{r['text'].splitlines()[0]}" for r in rows]
    lines[40] = "a broken line"
    (folder / "b.tsv").write_text("\n".join(lines) + "\n")
    with open(folder / "c.jsonl", "w") as stream:
        for row in table.to_pylist():
            stream.write(json.dumps(row) + "\n\n")
    config = InputConfig(input=(str(folder),), url_col="link", caption_col="text")
    whole = plan_inputs(config)
    split = plan_inputs(config, split_bytes=300, split_rows=25)
    assert len(whole.pieces) == 3 and len(split.pieces) > 20
    expected = _read_whole(whole)
    assert len(expected) == 3 * n
    _check_pipeline_rows(whole, expected)
    _check_pipeline_rows(split, expected)


@pytest.mark.slow
def test_every_format_reads_the_same_pairs(web, server, tmp_path):
    rows = [web.entry(i) for i in range(len(web)) if web.entry(i).label == "clean"][:6]
    table = pa.table(
        {
            "url": [server.base_url + e.path for e in rows],
            "caption": [e.caption for e in rows],
            "scene": [e.scene for e in rows],
        }
    )
    files = _write_formats(table, tmp_path / "in")
    output = tmp_path / "out"
    run_job_on(str(tmp_path / "in"), output, keep="scene")
    ledger = read_ledger(output)
    assert len(ledger) == len(files) * len(rows)
    pairs = zip(table["url"].to_pylist(), table["caption"].to_pylist(), strict=True)
    expected_uids = {make_uid(url, caption) for url, caption in pairs}
    # Every format repeats the same pairs: the first copies keep the content uids, the
    # repeats get their own, and each repeat names its first copy.
    assert len({row["uid"] for row in ledger}) == len(ledger)
    kept = [row for row in ledger if row["status"] == "kept"]
    assert len(kept) == len(rows) and all(row["source"].endswith("a.parquet") for row in kept)
    assert {row["uid"] for row in kept} == expected_uids
    assert {row["duplicate_of"] for row in ledger if row["status"] != "kept"} == expected_uids
    assert {row["reason"] for row in ledger if row["status"] != "kept"} == {"url_duplicate"}
    assert {str(row["scene"]) for row in ledger} == {str(e.scene) for e in rows}


def test_input_errors_stop_the_job_before_any_download(manifest, server, tmp_path):
    served = server.requests_served
    with pytest.raises(InputError, match="--url-col"):
        run_job_on(manifest, tmp_path / "out", "--url-col", "link")
    assert server.requests_served == served
    assert not (tmp_path / "out").exists()
