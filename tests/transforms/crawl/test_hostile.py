"""The hostile-server suite: every case of hostile_cases.py ends with its reason, in time.

All cases run at once, each with a downloader of its own, in a module fixture;
each test then checks one case: its ledger reason, and that it ended within
its wall-clock bound (generous: the deadline is 2 s, the bound 10 s). Run with
``-s -k table`` to print the attack classes and their counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from paircurate.schemas.codes import REASONS
from paircurate.schemas.config import DownloadConfig, ImageConfig
from paircurate.transforms.crawl.download import Downloader
from paircurate.transforms.crawl.fetch_many import fetch_many

from ..helpers import attempt_once
from .hostile_cases import (
    BOUND_S,
    DEADLINE_S,
    OK,
    PNG,
    READ_TIMEOUT_S,
    Case,
    all_cases,
    class_table,
)
from .hostile_server import HostileServer, drip, hostile_server, response, route, send

IMAGE_CONFIG = ImageConfig(image_size=32, resize_mode="border", encode_format="jpg")
CONFIG: dict[str, object] = dict(
    connect_timeout=0.5,
    timeout=READ_TIMEOUT_S,
    deadline=DEADLINE_S,
    retries=0,
    retry_backoff=0.01,
    max_bytes=2_000_000,
    respect_robots_txt=False,
    respect_tdmrep=False,
    respect_ai_preferences=False,
    allow_private_networks=False,
)
CASES = all_cases()


@dataclass(frozen=True)
class Outcome:
    reason: str | None
    detail: str | None
    seconds: float


def _fetch(case: Case, url: str, server: HostileServer) -> Outcome:
    config = DownloadConfig(**{**CONFIG, **case.config})
    downloader = Downloader(config, trusted_hosts=[server.host_port])
    started = time.monotonic()
    try:
        (result,) = list(fetch_many([(case.name, url)], downloader, IMAGE_CONFIG, threads=1))
    finally:
        downloader.close()
    detail = result.measurements.get("reason_detail")
    return Outcome(result.reason, detail, time.monotonic() - started)


@pytest.fixture(scope="module")
def outcomes() -> Iterator[tuple[dict[str, Outcome], HostileServer]]:
    with ExitStack() as stack:
        shared = stack.enter_context(hostile_server({}))
        guarded = stack.enter_context(hostile_server({}, default=route(send(OK))))
        cases = all_cases(shared.port, guarded.port)
        shared.routes.update({f"/case/{c.name}": c.served for c in cases if c.served})
        sites = {c.name: stack.enter_context(hostile_server(c.site)) for c in cases if c.site}

        def run(case: Case) -> Outcome:
            server = sites.get(case.name, shared)
            if case.site:
                return _fetch(case, server.url(case.url), server)
            return _fetch(case, case.url or shared.url(f"/case/{case.name}"), server)

        with ThreadPoolExecutor(max_workers=8) as pool:
            found = dict(zip([c.name for c in cases], pool.map(run, cases), strict=True))
        yield found, guarded


@pytest.mark.parametrize("case", CASES, ids=[f"{c.attack}:{c.name}" for c in CASES])
def test_a_hostile_case_ends_with_its_reason_in_time(
    case: Case, outcomes: tuple[dict[str, Outcome], HostileServer]
) -> None:
    outcome = outcomes[0][case.name]
    assert outcome.reason == case.expected, outcome.detail
    assert outcome.seconds < case.bound_s, outcome


def test_the_guarded_server_was_never_reached(
    outcomes: tuple[dict[str, Outcome], HostileServer],
) -> None:
    assert outcomes[1].requests == [] and outcomes[1].connections == 0


def test_the_table_covers_every_class_and_uses_known_reasons() -> None:
    print("\n" + class_table(CASES))
    counts: dict[str, int] = {}
    for case in CASES:
        counts[case.attack] = counts.get(case.attack, 0) + 1
        assert case.expected is None or case.expected in REASONS, case.name
    assert min(counts.values()) >= 5, counts


def _sequential(first: bytes) -> tuple[list, HostileServer]:
    """``first`` answers /first on a kept-alive connection, and /second its own image: what
    the second request gets tells whether bytes of the first were taken for its answer."""
    second = response(PNG[::-1] + PNG, headers=("Content-Type: image/png",))
    routes = {
        "/first": route(send(first), keep_alive=True),
        "/second": route(send(second), keep_alive=True),
    }
    config = DownloadConfig(**{**CONFIG, "download_threads": 1, "timeout": 2.0, "deadline": 3.0})
    with hostile_server(routes) as server:
        downloader = Downloader(config, trusted_hosts=[server.host_port])
        try:
            results = [attempt_once(downloader, server.url(path)) for path in ("/first", "/second")]
        finally:
            downloader.close()
    return results, server


@pytest.mark.parametrize(
    ("first", "reason", "connections"),
    [
        (  # conflicting lengths: the attacker's response hides behind the shorter one
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 60\r\n\r\nfirst"
            + response(b"EVIL", headers=("Content-Type: image/png",)),
            "download_error",
            2,
        ),
        (  # early hints: the final response is the 200 behind them
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + OK,
            None,
            1,
        ),
        (  # a body longer than its length: the rest is never read as the next response
            OK + response(b"EVIL"),
            None,
            2,
        ),
        (  # a length beside chunks: read as chunks, then the connection is closed
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(PNG), PNG),
            None,
            2,
        ),
    ],
    ids=["conflicting-lengths", "early-hints", "extra-bytes", "length-and-chunks"],
)
def test_no_response_is_taken_for_the_next_requests(
    first: bytes, reason: str | None, connections: int
) -> None:
    (one, two), server = _sequential(first)
    assert one.reason == reason, one.detail
    assert (two.reason, two.body) == (None, PNG[::-1] + PNG)
    assert server.connections == connections


def test_a_stalled_robots_txt_holds_its_hosts_urls_no_longer_than_its_deadline() -> None:
    """Eight URLs of one host at once; one thread fetches robots.txt, which drips, and the
    others wait for it: all end as robots.txt unavailable, within the bound."""
    routes = {"/robots.txt": route(drip(response(b"User-agent: *\nAllow: /\n"), every=0.2))}
    config = DownloadConfig(**{**CONFIG, "respect_robots_txt": True})
    with hostile_server(routes, default=route(send(OK))) as server:
        downloader = Downloader(config, trusted_hosts=[server.host_port])
        pairs = [(f"image-{n}", server.url(f"/image-{n}")) for n in range(8)]
        started = time.monotonic()
        try:
            results = list(fetch_many(pairs, downloader, IMAGE_CONFIG, threads=8))
        finally:
            downloader.close()
        seconds = time.monotonic() - started
    assert sorted(r.reason for r in results) == ["download_robots_unavailable"] * 8
    assert seconds < BOUND_S
    assert server.requests.count("/robots.txt") == 1
