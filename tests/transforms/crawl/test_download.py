"""Downloader.attempt against a real HTTP server on 127.0.0.1: one test per outcome."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from paircurate.schemas.config import DownloadConfig
from paircurate.transforms.crawl.addresses import is_public_address
from paircurate.transforms.crawl.download import (
    Downloader,
    DownloadResult,
    HostLimiter,
    retry_after_seconds,
    status_reason,
    user_agent_string,
)
from paircurate.transforms.crawl.robots import opted_out_by, rules_from_fetch

from ..helpers import TestServer, attempt_once


def _downloader(**overrides: object) -> Downloader:
    options: dict[str, object] = dict(
        timeout=2.0, max_bytes=1000, max_redirects=3, allow_private_networks=True, retries=0
    )
    options.update(overrides)
    return Downloader(DownloadConfig(**options))


@pytest.fixture
def downloader() -> Iterator[Downloader]:
    running = _downloader()
    yield running
    running.close()


def test_200_returns_the_body_and_headers(server: TestServer, downloader: Downloader) -> None:
    result = attempt_once(downloader, server.url("/image/red"))
    assert result.ok
    assert result.reason is None and result.detail is None
    assert result.body == server.files["red"][0]
    assert result.http_status == 200
    assert result.content_type == "image/png"
    assert result.elapsed_ms > 0


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (404, "download_http_404"),
        (410, "download_http_410"),
        (429, "download_http_429"),
        (403, "download_http_4xx"),
        (500, "download_http_5xx"),
        (503, "download_http_5xx"),
    ],
)
def test_http_error_status(
    server: TestServer, downloader: Downloader, status: int, reason: str
) -> None:
    result = attempt_once(downloader, server.url(f"/status/{status}"))
    assert not result.ok
    assert (result.reason, result.detail, result.http_status) == (reason, f"HTTP {status}", status)
    assert result.body is None


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "download_http_4xx"),
        (404, "download_http_404"),
        (410, "download_http_410"),
        (429, "download_http_429"),
        (451, "download_http_4xx"),
        (500, "download_http_5xx"),
        (599, "download_http_5xx"),
    ],
)
def test_status_reason(status: int, reason: str) -> None:
    assert status_reason(status) == reason


@pytest.mark.parametrize("failing", ["/status/404", "/status/500", "/big/5000", "/redirect/1"])
def test_connection_is_reusable_after_an_unread_body(server: TestServer, failing: str) -> None:
    # One thread, one pooled connection: whatever the first response left unread
    # must not be taken as the start of the next response.
    downloader = _downloader(download_threads=1)
    attempt_once(downloader, server.url(failing))
    result = attempt_once(downloader, server.url("/image/red"))
    assert result.reason is None, result.detail
    assert result.body == server.files["red"][0]
    downloader.close()


def test_slow_server_times_out(server: TestServer) -> None:
    downloader = _downloader(timeout=0.2)
    result = attempt_once(downloader, server.url("/slow"))
    assert result.reason == "download_timeout"
    assert result.body is None
    assert 150 < result.elapsed_ms < server.slow_seconds * 1000
    downloader.close()


def test_too_large_by_content_length(server: TestServer, downloader: Downloader) -> None:
    result = attempt_once(downloader, server.url("/big/5000"))
    assert result.reason == "download_too_large"
    assert result.detail == "Content-Length 5000 > 1000 bytes"
    assert result.body is None


def test_too_large_without_content_length(server: TestServer, downloader: Downloader) -> None:
    result = attempt_once(downloader, server.url("/big-stream/70000"))
    assert result.reason == "download_too_large"
    assert result.detail == "body exceeds 1000 bytes"


def test_body_at_the_cap_is_accepted(server: TestServer, downloader: Downloader) -> None:
    for path in ("/big/1000", "/big-stream/1000"):
        result = attempt_once(downloader, server.url(path))
        assert result.reason is None, path
        assert result.body == b"x" * 1000


def test_empty_body(server: TestServer, downloader: Downloader) -> None:
    result = attempt_once(downloader, server.url("/empty"))
    assert (result.reason, result.http_status) == ("download_empty", 200)
    assert result.body is None


def test_body_shorter_than_content_length(server: TestServer, downloader: Downloader) -> None:
    result = attempt_once(downloader, server.url("/short"))
    assert result.reason == "download_incomplete"
    assert "10 bytes read" in result.detail


def test_redirects_within_the_limit(server: TestServer, downloader: Downloader) -> None:
    attempt_once(downloader, server.url("/image/red"))  # robots.txt and tdmrep.json, once
    before = len(server.requests)
    result = attempt_once(downloader, server.url("/redirect/3"))
    assert result.reason is None
    assert result.body == server.files["red"][0]
    assert server.requests[before:] == ["/redirect/3", "/redirect/2", "/redirect/1", "/redirect/0"]


def test_one_redirect_too_many(server: TestServer, downloader: Downloader) -> None:
    result = attempt_once(downloader, server.url("/redirect/4"))
    assert result.reason == "download_too_many_redirects"
    assert result.detail == "more than 3 redirects"


def test_redirect_loop(server: TestServer, downloader: Downloader) -> None:
    result = attempt_once(downloader, server.url("/loop"))
    assert result.reason == "download_too_many_redirects"


def test_no_redirects_allowed(server: TestServer) -> None:
    downloader = _downloader(max_redirects=0)
    assert (
        attempt_once(downloader, server.url("/redirect/1")).reason == "download_too_many_redirects"
    )
    downloader.close()


def test_private_address_is_blocked_before_any_request(server: TestServer) -> None:
    downloader = _downloader(allow_private_networks=False)
    result = attempt_once(downloader, server.url("/image/blocked-probe"))
    assert result.reason == "download_blocked_address"
    assert "127.0.0.1" in result.detail and "--allow-private-networks" in result.detail
    assert "/image/blocked-probe" not in server.requests
    downloader.close()


def test_localhost_name_is_blocked(server: TestServer) -> None:
    downloader = _downloader(allow_private_networks=False)
    port = server.server_address[1]
    result = attempt_once(downloader, f"http://localhost:{port}/image/localhost-probe")
    assert result.reason == "download_blocked_address"
    assert "/image/localhost-probe" not in server.requests
    downloader.close()


def test_connection_refused(downloader: Downloader) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more.
    result = attempt_once(downloader, f"http://127.0.0.1:{port}/image.jpg")
    assert result.reason == "download_connection_error"
    assert "refused" in result.detail.lower()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "missing_url"),
        ("ftp://example.com/a.jpg", "unsupported_scheme"),
        ("file:///etc/passwd", "unsupported_scheme"),
        ("http:///a.jpg", "invalid_url"),
    ],
)
def test_unfetchable_url_is_refused(downloader: Downloader, url: str, reason: str) -> None:
    assert attempt_once(downloader, url).reason == reason


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.mark.parametrize(
    ("values", "directive"),
    [
        ([], None),
        (["noai"], "noai"),
        (["NoImageAI"], "noimageai"),
        (["nofollow, noindex"], "noindex"),
        (["nofollow", "noimageindex"], "noimageindex"),
        (["nofollow, noarchive"], None),
        (["paircurate: noai"], "paircurate: noai"),
        (["PairCurate: noai"], "paircurate: noai"),
        (["googlebot: noindex"], None),
        (["unavailable_after: 25 Jun 2010 15:00:00 PST"], None),
        (["max-image-preview: none, noai"], "noai"),
    ],
)
def test_x_robots_tag(values: list[str], directive: str | None) -> None:
    disallowed = DownloadConfig().header_directives
    assert opted_out_by(values, "paircurate", disallowed) == directive


def test_x_robots_tag_without_a_token_ignores_agent_specific_values() -> None:
    disallowed = DownloadConfig().header_directives
    assert opted_out_by(["paircurate: noai"], "", disallowed) is None
    assert DownloadConfig(disallowed_header_directives=("none",)).header_directives == frozenset()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 0 ", 0.0),
        ("-5", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_seconds(value, now=now) == seconds


def test_retry_waits_grow_and_stop(server: TestServer) -> None:
    downloader = _downloader(retries=3, retry_backoff=1.0, max_retry_wait=3.0)
    failed = DownloadResult(reason="download_http_5xx", detail="HTTP 503")
    waits = [downloader._retry_wait(failed, None, attempt) for attempt in (1, 2, 3, 4)]
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0 and 1.5 <= waits[2] <= 3.0
    assert waits[3] is None
    assert downloader._retry_wait(failed, "2", 1) == 2.0
    not_found = DownloadResult(reason="download_http_404", detail="HTTP 404")
    assert downloader._retry_wait(not_found, None, 1) is None
    assert downloader._retry_wait(DownloadResult(body=b"x"), None, 1) is None
    downloader.close()


DISALLOWED, UNAVAILABLE = "download_robots_disallowed", "download_robots_unavailable"
ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n"


@pytest.mark.parametrize(
    ("status", "body", "failure", "refused"),
    [
        (200, ROBOTS_TXT, None, {"/a.jpg": None, "/private/a": DISALLOWED}),
        (404, None, "download_http_404", {"/a.jpg": None, "/private/a": None}),
        (200, None, "download_empty", {"/a.jpg": None}),
        (503, None, "download_http_5xx", {"/a.jpg": UNAVAILABLE}),
        (429, None, "download_http_429", {"/a.jpg": UNAVAILABLE}),
        (None, None, "download_timeout", {"/a.jpg": UNAVAILABLE}),
    ],
)
def test_robots_rules(
    status: int | None, body: bytes | None, failure: str | None, refused: dict[str, str | None]
) -> None:
    rules = rules_from_fetch(status, body, failure)
    for path, expected in refused.items():
        refusal = rules.refusal(f"http://example.com{path}", "paircurate")
        assert (refusal[0] if refusal else None) == expected, path


def test_host_limiter_counts_and_forgets() -> None:
    limiter = HostLimiter(per_host=2)
    with limiter.slot("a.example"), limiter.slot("a.example"), limiter.slot("b.example"):
        assert (limiter.busy("a.example"), limiter.busy("b.example")) == (2, 1)
    assert limiter.busy("a.example") == 0 and limiter._busy == {}


def test_dns_failure_is_its_own_reason_and_not_retried() -> None:
    downloader = _downloader(allow_private_networks=False, retries=2)
    result = attempt_once(downloader, "http://does-not-exist.invalid/a.jpg")
    assert (result.reason, result.attempts) == ("download_dns_error", 1)
    downloader.close()


def test_user_agent_token_is_appended() -> None:
    assert user_agent_string(DownloadConfig()) == "Mozilla/5.0 (compatible; paircurate/0.1)"
    config = DownloadConfig(user_agent_token="my-crawl")
    assert (
        user_agent_string(config)
        == "Mozilla/5.0 (compatible; paircurate/0.1) (compatible; my-crawl)"
    )


def test_the_connection_goes_to_the_checked_address_not_a_rebound_one(
    server: TestServer, monkeypatch
) -> None:
    """DNS rebinding: a public answer for the check, then 127.0.0.1 for any later lookup."""
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["93.184.216.34"])  # public: passes the guard

    def rebinding_getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.example":
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = next(answers, "127.0.0.1")  # every later answer: the test server's
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    port = server.server_address[1]
    downloader = _downloader(allow_private_networks=False, connect_timeout=0.3, deadline=2.0)
    connected: list[tuple] = []
    real_create = socket.create_connection

    def recording_create(address, *args, **kwargs):
        connected.append(address)
        return real_create(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recording_create)
    try:
        result = attempt_once(downloader, f"http://rebind.example:{port}/image/rebind-probe")
    finally:
        downloader.close()
    # robots.txt and tdmrep.json are asked for too: every connection goes to the checked address.
    assert connected and set(connected) == {("93.184.216.34", port)}
    assert result.reason in ("download_connection_error", "download_timeout")
    assert "/image/rebind-probe" not in server.requests


def test_in_fetch_retries_cover_the_transient_reasons_but_not_robots_txt() -> None:
    from paircurate.schemas.codes import REASONS
    from paircurate.transforms.crawl.download import RETRYABLE

    later = {code for code, reason in REASONS.items() if reason.retryable}
    assert RETRYABLE == later - {UNAVAILABLE, "download_tdmrep_unavailable"}
    assert "download_http_5xx" in RETRYABLE and "download_dns_error" not in RETRYABLE
