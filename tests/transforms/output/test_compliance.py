"""The compliance summary: built from the reason codes that name what they respect."""

from __future__ import annotations

import dataclasses

import pytest

from paircurate.schemas import codes
from paircurate.schemas.codes import Reason, Status
from paircurate.schemas.config import DownloadConfig, InputConfig, JobConfig
from paircurate.transforms.output.compliance import compliance_summary


def _options(**download: object) -> dict:
    config = JobConfig(inputs=InputConfig(input=("in.csv",)), download=DownloadConfig(**download))
    return dataclasses.asdict(config)


def _by_name(summary: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in summary["respected"]}


def test_every_protocol_is_listed_with_its_counts_and_whether_it_was_honoured() -> None:
    reasons = {
        "download_robots_disallowed": 4,
        "download_robots_unavailable": 1,
        "download_tdm_reserved": 3,
        "download_http_404": 9,  # respects nothing: not in the summary
    }
    summary = compliance_summary(reasons, _options(user_agent_token="mycrawl"))
    assert summary["user_agent"] == "Mozilla/5.0 (compatible; paircurate/0.1) (compatible; mycrawl)"
    assert summary["user_agent_token"] == "mycrawl"
    entries = _by_name(summary)
    assert entries["robots.txt"] == {
        "name": "robots.txt",
        "honoured": False,  # --respect-robots-txt is off by default
        "option": "--respect-robots-txt",
        "rows_removed": 5,
        "reasons": {"download_robots_disallowed": 4, "download_robots_unavailable": 1},
    }
    assert entries["TDMRep"]["honoured"] and entries["TDMRep"]["rows_removed"] == 3
    assert entries["AI preferences"] == {
        "name": "AI preferences",
        "honoured": True,
        "option": "--respect-ai-preferences",
        "rows_removed": 0,
        "reasons": {"download_ai_optout": 0},
    }
    assert entries["X-Robots-Tag"]["honoured"]
    assert "download_http_404" not in str(summary)


def test_flags_turned_off_show_as_not_honoured() -> None:
    options = _options(
        respect_tdmrep=False,
        respect_ai_preferences=False,
        respect_robots_txt=True,
        disallowed_header_directives=("none",),
    )
    entries = _by_name(compliance_summary({}, options))
    honoured = {name: entry["honoured"] for name, entry in entries.items()}
    assert honoured == {
        "X-Robots-Tag": False,
        "robots.txt": True,
        "TDMRep": False,
        "AI preferences": False,
        "removal lists": False,  # no --exclude given
        "evaluation-set decontamination": False,
    }


def test_a_removal_list_reason_shows_up_by_naming_what_it_respects(monkeypatch) -> None:
    """A reason added elsewhere joins the summary by its ``respects`` field, even at zero rows."""
    extra = Reason("on_removal_list", Status.DROPPED, "read", "on a removal list",
                   respects="a new list", option="input")  # fmt: skip
    monkeypatch.setitem(codes.REASONS, extra.code, extra)
    entries = _by_name(compliance_summary({}, _options()))
    assert entries["a new list"] == {
        "name": "a new list",
        "honoured": True,  # --input is given
        "option": "--input",
        "rows_removed": 0,
        "reasons": {"on_removal_list": 0},
    }


@pytest.mark.parametrize("stored", [{}, {"download": {"user_agent_token": "bad token!"}}])
def test_missing_or_unreadable_options_fall_back_to_the_defaults(stored: dict) -> None:
    summary = compliance_summary({}, stored)
    assert summary["user_agent"] == DownloadConfig().user_agent
    assert _by_name(summary)["TDMRep"]["honoured"]
