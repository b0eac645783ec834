"""Site path patterns: RFC 9309 matching, in linear time on patterns built to backtrack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from paircurate.transforms.crawl.directives import ai_preferences_from_robots_txt
from paircurate.transforms.crawl.path_rules import path_pattern
from paircurate.transforms.crawl.tdmrep import parse_tdmrep

# Exponential for a backtracking matcher: every '*' may take any share of the a's.
ADVERSARIAL = "/" + "a*" * 30 + "b"
LONG_PATH = "/" + "a" * 100_000


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/a*b*c", "/axxbyyc", True),
        ("/a*b*c", "/axxcyyb", False),
        ("/a*b$", "/ab", True),
        ("/a*b$", "/abb", True),
        ("/a*b$", "/aba", False),
        ("/a*ab$", "/ab", False),  # the last piece may not overlap the ones before
        ("/*.jpg$", "/x.jpg.jpg", True),
        ("/**a", "/xa", True),
        ("*", "/anything", True),
        ("$", "", True),
        ("/$", "/a", False),
        ("/a$", "/a", True),
        ("/a", "/ab", True),
    ],
)
def test_star_and_dollar_match_as_rfc_9309_says(pattern: str, path: str, matches: bool) -> None:
    assert path_pattern(pattern).match(path) is matches


class _CountingPath(str):
    """A path that counts the characters its ``find`` calls may scan."""

    scanned = 0

    def find(self, piece: str, start: int = 0, *args: int) -> int:  # type: ignore[override]
        found = str.find(self, piece, start, *args)
        end = len(self) if found < 0 else found + len(piece)
        _CountingPath.scanned += end - start
        return found


@pytest.mark.parametrize("path", [LONG_PATH, LONG_PATH + "b", "/" + "ab" * 50_000])
def test_an_adversarial_pattern_scans_the_path_once(path: str) -> None:
    """Step count: the pieces' searches cover each character of the path at most once."""
    _CountingPath.scanned = 0
    pattern = path_pattern(ADVERSARIAL)
    pattern.match(_CountingPath(path))
    assert _CountingPath.scanned <= len(path)


def test_adversarial_site_rules_end_in_a_subprocess_that_a_backtracking_matcher_would_not() -> None:
    """The rules as robots.txt (Content-Usage) and tdmrep.json give them, on a long path;
    the bound is generous: the match itself takes milliseconds, backtracking for ever."""
    code = f"""
from paircurate.transforms.crawl.directives import ai_preferences_from_robots_txt
from paircurate.transforms.crawl.tdmrep import parse_tdmrep
url = "http://example.com{LONG_PATH}"
lines = ["User-agent: *", "Content-Usage: {ADVERSARIAL} train-ai=n"]
assert ai_preferences_from_robots_txt(lines, "*").refusal(url) is None
rules = parse_tdmrep(b'[{{"location": "{ADVERSARIAL}", "tdm-reservation": 1}}]')
assert rules.decision(url) is None
print("done")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout.strip()) == (0, "done"), run.stderr


def test_the_same_rules_match_where_they_should() -> None:
    url = "http://example.com/" + "a" * 40 + "b"
    lines = ["User-agent: *", f"Content-Usage: {ADVERSARIAL} train-ai=n"]
    refusal = ai_preferences_from_robots_txt(lines, "*").refusal(url)
    assert refusal == "robots.txt Content-Usage: train-ai=n"
    rules = parse_tdmrep(f'[{{"location": "{ADVERSARIAL}", "tdm-reservation": 1}}]'.encode())
    decision = rules.decision(url)
    assert decision is not None and decision.reserved
