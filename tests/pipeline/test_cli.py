"""The command line: every option documented, bad values rejected with the flag named."""

from __future__ import annotations

import dataclasses

import pytest

from paircurate.pipeline.cli import main
from paircurate.pipeline.options import flag_name, option_table
from paircurate.schemas.config import SECTIONS


def _all_flags() -> list[str]:
    return [flag_name(f.name) for cls in SECTIONS.values() for f in dataclasses.fields(cls)]


def test_run_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in _all_flags():
        assert flag in text
    assert "--runner" in text  # Beam's options are pointed to


def test_option_table_lists_every_option():
    table = option_table()
    for flag in _all_flags():
        assert f"`{flag}`" in table


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--image-size", "0"),
        ("--shard-size", "0"),
        ("--timeout", "-1"),
        ("--max-aspect-ratio", "0.5"),
        ("--encode-quality", "101"),
    ],
)
def test_bad_option_values_name_their_flag(flag, value, tmp_path, capsys):
    (tmp_path / "in.csv").write_text("url,caption\nhttp://example.com/a.jpg,a\n")
    code = main(["run", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o"),
                 flag, value])  # fmt: skip
    assert code == 2
    assert flag in capsys.readouterr().err


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    code = main(["run", "--input", str(tmp_path / "none.csv"), "--output", str(tmp_path / "o"),
                 "--clip-model", "none"])  # fmt: skip
    assert code == 2
    assert "no Parquet, CSV, TSV or JSONL files found" in capsys.readouterr().err


def test_clip_weights_that_cannot_be_had_stop_the_run_before_its_input(tmp_path, capsys):
    # No network here: LAION's ViT-B-32 weights are not in open_clip's cache.
    code = main(["run", "--input", str(tmp_path / "none.csv"), "--output", str(tmp_path / "o")])
    assert code == 2
    error = capsys.readouterr().err
    assert "--clip-checkpoint" in error and "no Parquet" not in error


def test_stats_record_local_inputs_as_absolute_paths(tmp_path, monkeypatch):
    from paircurate.pipeline.run import parse_args, recorded_options

    monkeypatch.chdir(tmp_path)
    config, _ = parse_args(["--input", "lists/a.csv", "gs://bucket/b.csv", "--output", "o"])
    recorded = recorded_options(config)["inputs"]["input"]
    assert recorded == [str(tmp_path / "lists" / "a.csv"), "gs://bucket/b.csv"]


def test_remove_needs_a_finished_run_and_one_kind_of_request(tmp_path, capsys):
    listed = tmp_path / "md5.txt"
    listed.write_text("md5\n" + "0" * 32 + "\n")
    assert main(["remove", str(tmp_path / "run")]) == 2
    assert "give removal lists (--exclude) or a diff (--diff)" in capsys.readouterr().err
    assert main(["remove", str(tmp_path / "run"), "--exclude", str(listed)]) == 2
    assert "stats.json not found; remove works on a finished run" in capsys.readouterr().err
    both = ["remove", str(tmp_path), "--exclude", str(listed), "--diff", "removed.parquet"]
    assert main(both) == 2
