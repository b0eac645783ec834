"""Balancing options: bad values and unreadable lists stop the job before it runs."""

from __future__ import annotations

import pytest

from paircurate.pipeline.cli import main
from paircurate.pipeline.run import run
from paircurate.schemas.config import BalanceConfig, ConfigError


@pytest.fixture
def source(tmp_path) -> str:
    path = tmp_path / "in.csv"
    path.write_text("url,caption\nhttp://example.com/a.jpg,a red square on blue\n")
    return str(path)


def test_option_values_are_checked():
    with pytest.raises(ConfigError, match="--balance-cap must be at least 1"):
        BalanceConfig(balance_entries="x.txt", balance_cap=0)
    with pytest.raises(ConfigError, match="--balance-unmatched"):
        BalanceConfig(balance_unmatched="maybe")
    assert not BalanceConfig().enabled and BalanceConfig(balance_entries="builtin:cc3m").enabled


def test_a_missing_list_names_the_flag(source, tmp_path):
    args = ["--input", source, "--output", str(tmp_path / "out"), "--text-only"]
    with pytest.raises(ConfigError, match="--balance-entries: cannot read"):
        run([*args, "--balance-entries", str(tmp_path / "missing.txt")])


def test_the_cli_exits_2_on_a_list_without_entries(source, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    code = main(
        ["run", "--input", source, "--output", str(tmp_path / "out"), "--text-only",
         "--balance-entries", str(empty)]
    )  # fmt: skip
    assert code == 2
    assert "--balance-entries" in capsys.readouterr().err
    assert not (tmp_path / "out" / "stats.json").exists()
