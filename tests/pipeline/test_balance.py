"""Concept balancing through the job on the synthetic web: caps, ledger, stats, determinism."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import read_ledger, run_job_on

from paircurate.pipeline.output.write_report import write_report
from paircurate.schemas.codes import REASONS
from paircurate.transforms.balance.matching import EntryMatcher

pytestmark = pytest.mark.slow

COLOURS = ["white", "pink", "red", "blue", "yellow", "purple", "orange", "brown", "black", "green"]
CAP = 4
BALANCE_REASONS = {"balance_cap", "balance_unmatched"}


@pytest.fixture(scope="module")
def entries(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("entries") / "colours.txt"
    path.write_text("# colours\n" + "\n".join(c.upper() for c in COLOURS) + "\n")
    return str(path)


def balance_args(entries: str, *extra: str) -> tuple[str, ...]:
    return ("--balance-entries", entries, "--balance-cap", str(CAP), *extra)


@pytest.fixture(scope="module")
def balanced(manifest, server, entries, tmp_path_factory):
    output = tmp_path_factory.mktemp("balanced") / "out"
    stats = run_job_on(manifest, output, *balance_args(entries))
    return read_ledger(output), stats, output


def reached_balance(row: dict) -> bool:
    """Rows the read and caption stages let through to balancing."""
    return row["reason"] is None or REASONS[row["reason"]].stage not in ("read", "caption")


def test_every_row_is_in_the_ledger_once_with_balance_reasons(balanced):
    ledger, stats, _ = balanced
    assert len(ledger) == stats["rows_in"] == len({row["uid"] for row in ledger})
    reasons = Counter(row["reason"] for row in ledger)
    assert reasons["balance_cap"] > 0 and reasons["balance_unmatched"] > 0
    for code in BALANCE_REASONS:
        assert stats["reason"][code]["count"] == reasons[code]
    for row in ledger:
        if row["reason"] in BALANCE_REASONS:
            assert row["status"] == "dropped"
            # Decided on the caption alone: nothing was downloaded for it.
            assert row["http_status"] is None and row["bytes"] is None, row


def test_entries_keep_at_most_the_cap_and_unmatched_pairs_drop(balanced):
    ledger, stats, _ = balanced
    matcher = EntryMatcher(COLOURS)
    before, only_kept, after = Counter(), Counter(), Counter()
    for row in filter(reached_balance, ledger):
        found = matcher.matches(row["caption_normalized"])
        survived = row["reason"] not in BALANCE_REASONS
        if not found:
            assert row["reason"] == "balance_unmatched", row
            continue
        assert row["reason"] != "balance_unmatched"
        before.update(found)
        after.update(found if survived else ())
        if len(found) == 1 and survived:
            only_kept[found[0]] += 1
    over = [entry for entry, count in before.items() if count > CAP]
    assert len(over) >= 3
    for entry, count in before.items():
        assert only_kept[entry] <= CAP
        if count <= CAP:
            assert after[entry] == count
    assert sum(1 for row in ledger if row["reason"] == "balance_cap") > 0
    section = stats["balance"]
    assert section["cap"] == CAP and section["entries"] == len(COLOURS)
    assert section["entries_over_cap"] == len(over)
    assert section["entries_matched"] == len(before)
    assert section["pairs_matched"] == sum(
        1 for row in filter(reached_balance, ledger) if matcher.matches(row["caption_normalized"])
    )
    head = {item["entry"]: (item["before"], item["after"]) for item in section["head"]}
    assert head == {entry: (before[entry], after[entry]) for entry in before}
    assert section["curve_before"][0] == [1, max(before.values())]


def balance_decisions(ledger: list[dict]) -> dict[str, str | None]:
    return {
        row["uid"]: row["reason"] if row["reason"] in BALANCE_REASONS else None
        for row in ledger
        if reached_balance(row)
    }


@pytest.mark.parametrize(
    "beam_args",
    [
        ("--shard-size", "7"),
        ("--direct_num_workers=3", "--direct_running_mode=multi_threading"),
        ("--direct_num_workers=2", "--direct_running_mode=multi_processing", "--shard-size", "20"),
    ],
    ids=["chunks", "threads", "processes"],
)
def test_same_decisions_whatever_the_workers_and_chunks(
    balanced, manifest, server, entries, tmp_path, beam_args
):
    ledger, _, _ = balanced
    output = tmp_path / "out"
    run_job_on(manifest, output, "--text-only", *balance_args(entries), *beam_args)
    assert balance_decisions(read_ledger(output)) == balance_decisions(ledger)


def test_unmatched_pairs_can_be_kept(manifest, server, entries, tmp_path):
    output = tmp_path / "out"
    stats = run_job_on(
        manifest, output, "--text-only", *balance_args(entries, "--balance-unmatched", "keep")
    )
    reasons = Counter(row["reason"] for row in read_ledger(output))
    assert reasons["balance_unmatched"] == 0 and reasons["balance_cap"] > 0
    assert stats["balance"]["pairs_unmatched"] > 0
    assert stats["balance"]["unmatched"] == "keep"


def test_the_report_shows_the_entries_before_and_after(balanced):
    _, stats, output = balanced
    page = open(write_report(str(output), with_images=False), encoding="utf-8").read()
    assert '<section id="balance">' in page and 'href="#balance"' in page
    assert 'data-chart="balance"' in page and "chart-balance" in page
    top = stats["balance"]["head"][0]
    row = (
        f'<tr><td>{top["entry"]}</td><td class="num">{top["before"]}</td>'
        f'<td class="num">{top["after"]}</td></tr>'
    )
    assert row in page
