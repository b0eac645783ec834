"""Opt-out protocols beyond robots.txt's Disallow, against the fault server on 127.0.0.1.

TDMRep (the tdm-reservation header and /.well-known/tdmrep.json), X-Robots-Tag
noml, and AI-training preferences (the Content-Usage header, Content-Usage and
Content-Signal rules in robots.txt): each opts a URL out with its reason and a
detail naming the source; each flag turns its protocol off.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from paircurate.schemas.codes import REASONS
from paircurate.schemas.config import DownloadConfig
from paircurate.transforms.crawl.directives import (
    ai_preferences_from_robots_txt,
    parse_preferences,
    usage_refusal,
)
from paircurate.transforms.crawl.download import Downloader, DownloadResult
from paircurate.transforms.crawl.path_rules import path_pattern
from paircurate.transforms.crawl.tdmrep import parse_tdmrep

from ..faultserver import FaultServer, running_fault_server
from ..helpers import attempt_once, image_bytes

TOKEN = "paircurate-test"
TDMREP = "/.well-known/tdmrep.json"
POLICY = "https://rights.example/tdm-policy.json"
RULES = [
    {"location": "/gallery/free/*", "tdm-reservation": 0},
    {"location": "/gallery/*.png$", "tdm-reservation": 1, "tdm-policy": POLICY},
    {"location": "/gallery/all/", "tdm-reservation": 1},
]


@pytest.fixture
def faults() -> Iterator[FaultServer]:
    with running_fault_server(bomb_bytes=1000) as server:
        server.files["red"] = (image_bytes(64, 48), "image/png")
        server.robots_txt = b"User-agent: *\nDisallow: /private/\n"
        server.stall_seconds = 1.5
        yield server


def _fetch(faults: FaultServer, *paths: str, **overrides: object) -> list[DownloadResult]:
    options: dict[str, object] = dict(
        connect_timeout=0.5, timeout=0.5, deadline=1.0, retries=0, user_agent_token=TOKEN
    )
    options.update(overrides)
    downloader = Downloader(DownloadConfig(**options), trusted_hosts=[faults.host_port])
    try:
        return [attempt_once(downloader, faults.url(path)) for path in paths]
    finally:
        downloader.close()


def _outcomes(results: list[DownloadResult]) -> list[tuple[str | None, str | None]]:
    return [(result.reason, result.detail) for result in results]


def test_the_tdm_reservation_header_reserves_with_its_policy(faults: FaultServer) -> None:
    results = _fetch(
        faults, f"/gallery/a/red?tdm=1&policy={POLICY}", "/gallery/a/red?tdm=0", "/gallery/a/red"
    )
    assert _outcomes(results) == [
        (
            "download_tdm_reserved",
            f"TDM rights reserved by the tdm-reservation header, tdm-policy {POLICY}",
        ),
        (None, None),
        (None, None),
    ]
    assert REASONS["download_tdm_reserved"].respects == "TDMRep"


def test_tdmrep_json_locations_first_match_wins(faults: FaultServer) -> None:
    faults.tdmrep_status, faults.tdmrep_json = 200, json.dumps(RULES).encode()
    results = _fetch(
        faults,
        "/gallery/free/red.png",  # rule 1 (not reserved) comes before rule 2
        "/gallery/b/red.png",  # rule 2, with its policy
        "/gallery/b/red.png.jpg",  # '$': no match
        "/gallery/all/c/red",  # rule 3: a path prefix
        "/gallery/all/c/red?tdm=0",  # the header overrules the file
        "/file/red",  # no rule matches
    )
    assert _outcomes(results) == [
        (None, None),
        (
            "download_tdm_reserved",
            f"TDM rights reserved by {TDMREP} (location '/gallery/*.png$'), tdm-policy {POLICY}",
        ),
        (None, None),
        ("download_tdm_reserved", f"TDM rights reserved by {TDMREP} (location '/gallery/all/')"),
        (None, None),
        (None, None),
    ]
    # A reserved image's body is never asked for past its headers; the file once per origin.
    assert len(faults.times(TDMREP)) == 1


def test_tdmrep_json_is_fetched_once_per_origin_by_many_threads(faults: FaultServer) -> None:
    faults.tdmrep_status, faults.tdmrep_json = 200, json.dumps(RULES).encode()
    downloader = Downloader(
        DownloadConfig(user_agent_token=TOKEN, retries=0), trusted_hosts=[faults.host_port]
    )
    urls = [faults.url(f"/gallery/all/{n}") for n in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        reasons = [r.reason for r in pool.map(functools.partial(attempt_once, downloader), urls)]
    downloader.close()
    assert reasons == ["download_tdm_reserved"] * 12
    assert len(faults.times(TDMREP)) == 1
    assert len(faults.times("/robots.txt")) == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, b"[]"),  # missing
        (200, b"<html><body>Not found</body></html>"),  # a soft 404
        (200, b'{"location": "/", "tdm-reservation": 1}'),  # an object, not an array
        (200, b'[{"location": "/", "tdm-reservation": 1'),  # cut short
        (
            200,
            b'[{"location": "/"}, {"tdm-reservation": 1}, {"location": "/", "tdm-reservation": 7}]',
        ),
    ],
    ids=["404", "html", "object", "truncated", "bad-rules"],
)
def test_a_missing_or_malformed_tdmrep_json_reserves_nothing(
    faults: FaultServer, status: int, body: bytes
) -> None:
    faults.tdmrep_status, faults.tdmrep_json = status, body
    assert _outcomes(_fetch(faults, "/gallery/all/red", "/file/red")) == [(None, None)] * 2
    assert len(faults.times(TDMREP)) == 1


def test_malformed_rules_are_skipped_and_good_ones_kept() -> None:
    body = json.dumps([{"location": 3, "tdm-reservation": 1}, "x", *RULES[1:]]).encode()
    rules = parse_tdmrep(body)
    assert [rule.location for rule in rules.rules] == ["/gallery/*.png$", "/gallery/all/"]


def test_an_unreadable_tdmrep_json_closes_the_host(faults: FaultServer) -> None:
    faults.tdmrep_status = 503
    results = _fetch(faults, "/file/red?n=1", "/file/red?n=2")
    assert [r.reason for r in results] == ["download_tdmrep_unavailable"] * 2
    assert results[0].detail == (
        f"{TDMREP} unavailable (download_http_5xx): the host is off limits for now"
    )
    assert all(r.attempts == 1 for r in results)
    assert not any(path.startswith("/file/red") for _, path in faults.requests)
    assert REASONS["download_tdmrep_unavailable"].retryable  # retry-failed takes it up


def test_a_tdmrep_json_that_never_answers_gives_the_timeout(faults: FaultServer) -> None:
    faults.tdmrep_stall = True
    (result,) = _fetch(faults, "/file/red")
    assert result.reason == "download_timeout"
    assert result.detail.startswith(f"{TDMREP} could not be fetched: ")
    assert not any(path.startswith("/file/red") for _, path in faults.requests)


def test_respect_tdmrep_off_reads_neither_header_nor_file(faults: FaultServer) -> None:
    faults.tdmrep_status, faults.tdmrep_json = 200, json.dumps(RULES).encode()
    results = _fetch(faults, "/gallery/all/red?tdm=1", "/gallery/b/red.png", respect_tdmrep=False)
    assert _outcomes(results) == [(None, None)] * 2
    assert faults.times(TDMREP) == []


def test_x_robots_tag_noml_opts_out_unless_directives_are_off(faults: FaultServer) -> None:
    (refused,) = _fetch(faults, "/robots-tag/noml")
    assert (refused.reason, refused.detail) == ("download_opted_out", "X-Robots-Tag: noml")
    (allowed,) = _fetch(faults, "/robots-tag/noml", disallowed_header_directives=("none",))
    assert allowed.reason is None


@pytest.mark.parametrize(
    ("value", "reason", "detail"),
    [
        ("train-ai=n", "download_ai_optout", "Content-Usage header: train-ai=n"),
        ("search=y, train-ai=n;note=1", "download_ai_optout", "Content-Usage header: train-ai=n"),
        ("bots=n", "download_ai_optout", "Content-Usage header: bots=n"),
        ("train-genai=n", "download_ai_optout", "Content-Usage header: train-genai=n"),
        ("bots=n, train-ai=y", None, None),  # the specific category overrides the broad one
        ("search=n", None, None),
        ("train-ai=y", None, None),
    ],
)
def test_the_content_usage_header(
    faults: FaultServer, value: str, reason: str | None, detail: str | None
) -> None:
    (result,) = _fetch(faults, f"/gallery/a/red?usage={value.replace(' ', '%20')}")
    assert (result.reason, result.detail) == (reason, detail)


ROBOTS_WITH_PREFERENCES = f"""\
# Content signals: search=yes allowed, ai-train=no not allowed
User-agent: *
Content-Signal: search=yes, ai-train=no
Disallow: /private/

User-agent: otherbot
User-agent: {TOKEN}
Content-Usage: train-ai=n
Content-Usage: /gallery/free/ train-ai=y
Allow: /
"""


def test_robots_txt_preferences_for_our_agent(faults: FaultServer) -> None:
    faults.robots_txt = ROBOTS_WITH_PREFERENCES.encode()
    results = _fetch(faults, "/file/red", "/gallery/free/red", "/private/red")
    assert _outcomes(results) == [
        ("download_ai_optout", "robots.txt Content-Usage: train-ai=n"),
        (None, None),  # the longer path's rule says yes
        ("download_ai_optout", "robots.txt Content-Usage: train-ai=n"),
    ]  # without --respect-robots-txt, Disallow: /private/ is not honoured
    # Another agent falls to the '*' group and its Content-Signal.
    (other,) = _fetch(faults, "/gallery/free/red", user_agent_token="someoneelse")
    assert (other.reason, other.detail) == (
        "download_ai_optout",
        "robots.txt Content-Signal: ai-train=no",
    )


def test_respect_ai_preferences_off(faults: FaultServer) -> None:
    faults.robots_txt = ROBOTS_WITH_PREFERENCES.encode()
    results = _fetch(
        faults, "/file/red", "/gallery/a/red?usage=train-ai%3Dn", respect_ai_preferences=False
    )
    assert _outcomes(results) == [(None, None)] * 2
    assert faults.times("/robots.txt") == []  # nothing asks for it any more


def test_an_unreadable_robots_txt_does_not_close_hosts_for_preferences_alone(
    faults: FaultServer,
) -> None:
    faults.robots_status = 503
    (alone,) = _fetch(faults, "/file/red")
    assert alone.reason is None
    (strict,) = _fetch(faults, "/file/red", respect_robots_txt=True)
    assert strict.reason == "download_robots_unavailable"


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/", "/a/b.jpg", True),
        ("/gallery/", "/gallery/x", True),
        ("/gallery/", "/galleryx", False),
        ("/*.png$", "/a/b.png", True),
        ("/*.png$", "/a/b.png?x=1", False),
        ("/a*/c", "/ab/c/d", True),
        ("/a.b", "/aXb", False),  # '.' is a character, not a wildcard
    ],
)
def test_path_patterns(pattern: str, path: str, matches: bool) -> None:
    assert bool(path_pattern(pattern).match(path)) is matches


def test_preference_parsing() -> None:
    assert parse_preferences("Train-AI = N ; x=1, search=y, flag") == {
        "train-ai": "n",
        "search": "y",
        "flag": "?1",
    }
    assert usage_refusal({"bots": "n", "train-ai": "y"}) is None
    lines = ["Content-Signal: ai-train=no", "User-agent: *", "Content-Usage: search=y"]
    preferences = ai_preferences_from_robots_txt(lines, TOKEN)
    assert preferences.refusal("http://h/x") == "robots.txt Content-Signal: ai-train=no"


def test_a_thread_waits_for_anothers_site_file_no_longer_than_its_bound() -> None:
    """The first thread's fetch hangs; the second gets rules that keep the host closed
    once ``wait_s`` passes, not the empty rules that would let everything through."""
    import threading

    from paircurate.transforms.crawl.robots import RobotsCache, RobotsRules

    started, release = threading.Event(), threading.Event()

    def fetch(url: str) -> RobotsRules:
        started.set()
        release.wait(10)
        return RobotsRules()

    cache = RobotsCache(fetch, TOKEN, wait_s=0.2)
    owner = threading.Thread(target=cache.rules, args=("http://example.com/a.jpg",))
    owner.start()
    started.wait(5)
    try:
        refusal = cache.refusal("http://example.com/b.jpg")
    finally:
        release.set()
        owner.join(5)
    assert refusal is not None and refusal[0] == "download_robots_unavailable"
    assert "still being fetched" in refusal[1]
