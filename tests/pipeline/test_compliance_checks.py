"""Malformed list files stop a run on the launcher, in one line naming the flag, file and line."""

from __future__ import annotations

import io
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paircurate.pipeline.cli import main
from paircurate.pipeline.compliance import checks
from paircurate.schemas.config import ComplianceConfig, ConfigError

SHA = "ab" * 32


def check(**options) -> str:
    with pytest.raises(ConfigError) as raised:
        checks.check_list_files(ComplianceConfig(**options))
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_an_unknown_kind_on_line_two_names_flag_file_and_line(tmp_path):
    listed = tmp_path / "takedown.csv"
    listed.write_text(f"kind,value\nbogus,{SHA}\n")
    message = check(exclude=(str(listed),))
    assert message.startswith(f"--exclude {listed} line 2: unknown kind 'bogus'")


def test_a_bad_entry_under_a_kind_prefix(tmp_path):
    listed = tmp_path / "hashes.txt"
    listed.write_text(f"{SHA}\nnot-a-digest\n")
    message = check(exclude=(f"sha256:{listed}",))
    assert message == (
        f"--exclude {listed} line 2: a sha256 entry is 64 hex digits, not 'not-a-digest'"
    )


def test_a_spec_that_does_not_parse(tmp_path):
    message = check(exclude=(f"sha256/3:{tmp_path / 'l.txt'}",))
    assert message.startswith("--exclude 'sha256/3:")
    assert "only phash and pdq entries take" in message


def test_a_missing_or_unreadable_list(tmp_path):
    missing = tmp_path / "missing.csv"
    assert check(exclude=(str(missing),)).startswith(f"--exclude {missing}: cannot be read")
    broken = tmp_path / "list.parquet"
    broken.write_bytes(b"not parquet at all")
    assert check(exclude=(str(broken),)).startswith(f"--exclude {broken}: cannot be read")


def test_a_parquet_list_without_its_columns(tmp_path):
    listed = tmp_path / "list.parquet"
    pq.write_table(pa.table({"digest": [SHA]}), listed)
    message = check(exclude=(str(listed),))
    assert message.startswith(f"--exclude {listed}: a Parquet list has columns kind and value")


def test_good_lists_and_sets_pass(tmp_path):
    listed = tmp_path / "l.csv"
    listed.write_text(f"kind,value\nsha256,{SHA}\ndomain,example.com\n")
    evalset = tmp_path / "eval.parquet"
    pq.write_table(pa.table({"phash": ["00ff00ff00ff00ff", None], "url": ["a", "b"]}), evalset)
    checks.check_list_files(ComplianceConfig(exclude=(str(listed),), decontaminate=(str(evalset),)))


def test_only_the_top_of_a_list_is_read_on_the_launcher(tmp_path):
    listed = tmp_path / "long.txt"
    good = "\n".join([SHA] * checks.CHECKED_ROWS)
    listed.write_text(f"{good}\nbogus\n")
    checks.check_list_files(ComplianceConfig(exclude=(f"sha256:{listed}",)))


def test_an_evaluation_set_with_a_bad_phash_names_its_row(tmp_path):
    evalset = tmp_path / "eval.parquet"
    pq.write_table(pa.table({"phash": ["00ff00ff00ff00ff", "zz"]}), evalset)
    message = check(decontaminate=(str(evalset),))
    assert message == f"--decontaminate {evalset} row 2: phash 'zz' is not 16 hex digits"


def test_an_empty_or_broken_evaluation_set(tmp_path):
    (tmp_path / "empty").mkdir()
    message = check(decontaminate=(str(tmp_path / "empty"),))
    assert message.startswith(f"--decontaminate {tmp_path / 'empty'}: no images")
    broken = tmp_path / "set" / "eval.tar"
    broken.parent.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo("a.jpg")
        member.size = 4
        tar.addfile(member, io.BytesIO(b"\xff\xd8\xff\xe0"))
    broken.write_bytes(buffer.getvalue()[:700])  # cut inside the member's data
    message = check(decontaminate=(str(broken.parent),))
    assert message.startswith(f"--decontaminate {broken}: cannot be read as an evaluation set")


def run_cli(tmp_path, capsys, *options: str) -> tuple[int, str]:
    source = tmp_path / "in.csv"
    source.write_text("url,caption\nhttp://example.com/a.jpg,a dog on a beach\n")
    output = tmp_path / "out"
    code = main(["run", "--input", str(source), "--output", str(output),
                 "--clip-model", "none", *options])  # fmt: skip
    error = capsys.readouterr().err
    assert not output.exists()  # stopped before the pipeline ran
    assert "Traceback" not in error
    return code, error.strip().splitlines()[-1]


def test_the_cli_stops_a_bad_exclude_list_in_one_line(tmp_path, capsys):
    listed = tmp_path / "takedown.csv"
    listed.write_text(f"kind,value\nbogus,{SHA}\n")
    code, line = run_cli(tmp_path, capsys, "--exclude", str(listed))
    assert code == 2
    assert line.startswith(f"paircurate: error: --exclude {listed} line 2: unknown kind 'bogus'")


def test_the_cli_stops_a_bad_evaluation_set_in_one_line(tmp_path, capsys):
    evalset = tmp_path / "eval.parquet"
    pq.write_table(pa.table({"phash": ["nothex"]}), evalset)
    code, line = run_cli(tmp_path, capsys, "--decontaminate", str(evalset))
    assert code == 2
    assert line == (
        f"paircurate: error: --decontaminate {evalset} row 1: phash 'nothex' is not 16 hex digits"
    )


def test_the_cli_stops_a_bad_balance_list_in_one_line(tmp_path, capsys):
    entries = tmp_path / "entries.csv"
    entries.write_text("concept\ndog\n")
    code, line = run_cli(tmp_path, capsys, "--balance-entries", str(entries))
    assert code == 2
    assert line.startswith(f"paircurate: error: --balance-entry-column: {entries} has no column")
