"""The fault suite: every way a crawl goes wrong, driven through fetch_many against a real server.

One table of (uid, URL, expected reason) goes through download and image
processing at once; every uid must come back exactly once with its own reason,
and nothing may raise. The address guard stays on: only the fault server's own
host:port is trusted, so redirects to private addresses meet the guard.
"""

from __future__ import annotations

import functools
import io
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from paircurate.schemas.codes import REASONS
from paircurate.schemas.config import DownloadConfig, ImageConfig
from paircurate.transforms.crawl.download import Downloader
from paircurate.transforms.crawl.fetch_many import FetchResult, fetch_many
from paircurate.transforms.crawl.image_pool import ImagePool

from ..faultserver import FaultServer, png_header_only, running_fault_server
from ..helpers import attempt_once, image_bytes

IMAGE_CONFIG = ImageConfig(image_size=32, resize_mode="border", encode_format="jpg")
TOKEN = "paircurate-test"


def _photo_jpeg() -> bytes:
    """A noisy JPEG, so that cutting it short lands in the middle of its scan data."""
    rng = random.Random(7)
    image = Image.frombytes(
        "RGB", (128, 96), bytes(rng.randrange(256) for _ in range(128 * 96 * 3))
    )
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    photo = _photo_jpeg()
    with running_fault_server() as server:
        server.files.update(
            red=(image_bytes(64, 48), "image/png"),
            photo=(photo, "image/jpeg"),
            jpeg_as_text=(photo, "text/plain"),
            truncated=(photo[: len(photo) * 6 // 10], "image/jpeg"),
            html_as_jpeg=(b"<!doctype html><html><body>Not found</body></html>", "image/jpeg"),
            pixel_bomb=(png_header_only(30_000, 30_000), "image/png"),
        )
        yield server


def _config(**overrides: object) -> DownloadConfig:
    options: dict[str, object] = dict(
        connect_timeout=0.5,
        timeout=0.3,
        deadline=1.0,
        retries=2,
        retry_backoff=0.01,
        max_retry_wait=1.5,
        max_bytes=2_000_000,
        respect_robots_txt=True,
        user_agent_token=TOKEN,
        allow_private_networks=False,
    )
    options.update(overrides)
    return DownloadConfig(**options)


@pytest.fixture
def downloader(faults: FaultServer) -> Iterator[Downloader]:
    running = Downloader(_config(), trusted_hosts=[faults.host_port])
    yield running
    running.close()


def _table(server: FaultServer) -> dict[str, tuple[str, str | None]]:
    """uid -> (URL, expected reason); paths starting with / are on the fault server."""
    rows = {
        "png": ("/file/red", None),
        "jpeg-served-as-text": ("/file/jpeg_as_text", None),
        "gzip-encoded-image": ("/gzip/photo", None),
        "http-404": ("/status/404", "download_http_404"),
        "http-410": ("/status/410", "download_http_410"),
        "http-500-every-time": ("/status/500", "download_http_5xx"),
        "http-503-then-ok": ("/flaky/503/2/503", None),
        "http-429-retry-after-then-ok": ("/flaky/429ok/1/429?retry_after=1", None),
        "http-429-every-time": ("/flaky/429no/99/429?retry_after=0", "download_http_429"),
        "http-429-wait-too-long": ("/flaky/429long/99/429?retry_after=3600", "download_http_429"),
        "body-stalls": ("/stall", "download_timeout"),
        "body-trickles-past-deadline": ("/trickle", "download_timeout"),
        "connection-reset": ("/reset", "download_connection_error"),
        "truncated-jpeg": ("/file/truncated", "image_truncated"),
        "html-served-as-jpeg": ("/file/html_as_jpeg", "image_decode_error"),
        "30000x30000-png": ("/file/pixel_bomb", "image_too_many_pixels"),
        "empty-body": ("/empty", "download_empty"),
        "redirect-loop": ("/loop", "download_too_many_redirects"),
        "redirect-to-10.0.0.1": ("/redirect?to=http://10.0.0.1/a.jpg", "download_blocked_address"),
        "redirect-to-metadata": (
            "/redirect?to=http://169.254.169.254/latest/meta-data/",
            "download_blocked_address",
        ),
        "redirect-to-ipv6-loopback": (
            "/redirect?to=http://[::1]/a.jpg",
            "download_blocked_address",
        ),
        "redirect-to-ftp": ("/redirect?to=ftp://example.com/a.jpg", "unsupported_scheme"),
        "loopback-other-port": ("http://127.0.0.1:9/a.jpg", "download_blocked_address"),
        "localhost": ("http://localhost/a.jpg", "download_blocked_address"),
        "multicast": ("http://224.0.0.1/a.jpg", "download_blocked_address"),
        "reserved": ("http://240.0.0.1/a.jpg", "download_blocked_address"),
        "file-url": ("file:///etc/passwd", "unsupported_scheme"),
        "data-url": ("data:image/png;base64,iVBORw0KGgo=", "unsupported_scheme"),
        "ftp-url": ("ftp://example.com/a.jpg", "unsupported_scheme"),
        "no-scheme": ("www.example.com/a.jpg", "unsupported_scheme"),
        "no-host": ("http:///a.jpg", "invalid_url"),
        "space-in-host": ("http://exa mple.com/a.jpg", "invalid_url"),
        "unclosed-ipv6": ("http://[::1/a.jpg", "invalid_url"),
        "bad-port": ("http://example.com:99999/a.jpg", "invalid_url"),
        "empty-url": ("", "missing_url"),
        "idn-host": ("http://bücher.example/bild.jpg", "download_dns_error"),
        "idn-label-too-long": ("http://" + "ü" * 70 + ".example/a.jpg", "invalid_url"),
        "gzip-bomb": ("/gzip-bomb", "download_too_large"),
        "x-robots-tag-noai": ("/robots-tag/noai", "download_opted_out"),
        "x-robots-tag-list": ("/robots-tag/nofollow,%20NoImageIndex", "download_opted_out"),
        "x-robots-tag-for-us": (f"/robots-tag/{TOKEN}:%20noai", "download_opted_out"),
        "x-robots-tag-for-others": ("/robots-tag/otherbot:%20noai", None),
        "x-robots-tag-harmless": ("/robots-tag/nofollow", None),
        "robots-txt-disallow": ("/private/red", "download_robots_disallowed"),
    }
    return {
        uid: (server.url(url) if url.startswith("/") else url, reason)
        for uid, (url, reason) in rows.items()
    }


@pytest.fixture(scope="module", params=["in-threads", "image-pool"])
def image_pool(request: pytest.FixtureRequest) -> Iterator[ImagePool | None]:
    """Image work in the download threads, and in worker processes as the local runner does."""
    if request.param == "in-threads":
        yield None
        return
    pool = ImagePool(2)
    yield pool
    pool.close()


@pytest.mark.timeout(60)  # stalls are bounded by the deadline: a hang fails here, not in CI
def test_every_fault_ends_with_its_own_reason(
    faults: FaultServer, downloader: Downloader, image_pool: ImagePool | None
) -> None:
    table = _table(faults)
    pairs = [(uid, url) for uid, (url, _) in table.items()]
    results = list(fetch_many(pairs, downloader, IMAGE_CONFIG, threads=16, image_pool=image_pool))
    assert sorted(r.uid for r in results) == sorted(table)
    by_uid = {r.uid: r for r in results}
    got = {uid: (r.reason, r.measurements.get("reason_detail")) for uid, r in by_uid.items()}
    mismatched = {uid: got[uid] for uid, (_, reason) in table.items() if got[uid][0] != reason}
    assert mismatched == {}
    for uid, result in by_uid.items():
        _check_image(uid, result)


def _check_image(uid: str, result: FetchResult) -> None:
    if result.reason is not None:
        assert result.image is None, uid
        return
    image = Image.open(io.BytesIO(result.image))
    assert (image.format, image.size) == ("JPEG", (32, 32)), uid


def fetch_alone(url: str, downloader: Downloader) -> FetchResult:
    """One pair through fetch_many, retries and all."""
    (result,) = fetch_many([("alone", url)], downloader, IMAGE_CONFIG, threads=1)
    return result


def test_attempts_are_counted_in_the_detail(faults: FaultServer, downloader: Downloader) -> None:
    retried = fetch_alone(faults.url("/status/500"), downloader)
    assert retried.measurements["reason_detail"] == "HTTP 500 (after 3 attempts)"
    once = attempt_once(downloader, faults.url("/status/404"))
    assert (once.detail, once.attempts) == ("HTTP 404", 1)
    assert len(faults.times("/status/404")) >= 1
    before = len(faults.times("/status/404"))
    attempt_once(downloader, faults.url("/status/404"))
    assert len(faults.times("/status/404")) == before + 1  # a 404 is not retried


def test_retry_after_is_honoured(faults: FaultServer, downloader: Downloader) -> None:
    path = "/flaky/honour/1/429?retry_after=1"
    result = fetch_alone(faults.url(path), downloader)
    assert (result.reason, result.measurements["http_status"]) == (None, 200)
    first, second = faults.times(path)  # two attempts
    assert second - first >= 0.95


@pytest.mark.parametrize("image_pool", ["in-threads"], indirect=True)
def test_a_retry_waits_in_the_schedule_not_in_a_thread(
    faults: FaultServer, downloader: Downloader, image_pool: ImagePool | None
) -> None:
    """With one thread, a URL told to come back in 1 s does not hold up the others."""
    flaky = faults.url("/flaky/scheduled/1/429?retry_after=1")
    others = [(f"red-{n}", faults.url(f"/file/red?n={n}")) for n in range(5)]
    pairs = [("flaky", flaky), *others]
    results = list(fetch_many(pairs, downloader, IMAGE_CONFIG, threads=1, image_pool=image_pool))
    assert [r.uid for r in results] == [uid for uid, _ in others] + ["flaky"]
    assert all(r.reason is None for r in results)
    first, second = faults.times("/flaky/scheduled/1/429?retry_after=1")
    assert second - first >= 0.95  # the server's Retry-After is still honoured
    red_times = [t for t, path in faults.requests if path.startswith("/file/red?n=")][-5:]
    assert all(first < t < second for t in red_times)


def test_retry_after_beyond_the_cap_gives_up_at_once(
    faults: FaultServer, downloader: Downloader
) -> None:
    path = "/flaky/cap/99/429?retry_after=3600"
    result = attempt_once(downloader, faults.url(path))
    assert (result.reason, result.attempts) == ("download_http_429", 1)
    assert result.detail == "HTTP 429; Retry-After 3600 s is over --max-retry-wait"
    assert len(faults.times(path)) == 1


def test_trickling_body_stops_at_the_deadline(faults: FaultServer) -> None:
    downloader = Downloader(_config(retries=0, deadline=0.5), trusted_hosts=[faults.host_port])
    result = attempt_once(downloader, faults.url("/trickle"))
    assert result.reason == "download_timeout"
    assert 450 < result.elapsed_ms < 1000
    downloader.close()


def test_gzip_bomb_is_refused_without_inflating_it(faults: FaultServer) -> None:
    downloader = Downloader(_config(max_bytes=100_000), trusted_hosts=[faults.host_port])
    result = attempt_once(downloader, faults.url("/gzip-bomb"))
    assert (result.reason, result.detail) == ("download_too_large", "body exceeds 100000 bytes")
    downloader.close()


def test_requests_name_our_agent_and_ask_for_no_compression(
    faults: FaultServer, downloader: Downloader
) -> None:
    attempt_once(downloader, faults.url("/file/red?agent"))
    headers = {k.lower(): v for k, v in faults.headers_seen["/file/red?agent"].items()}
    assert (
        headers["user-agent"] == f"Mozilla/5.0 (compatible; paircurate/0.1) (compatible; {TOKEN})"
    )
    assert headers["accept-encoding"] == "identity"


def test_robots_txt_is_fetched_once_per_host(faults: FaultServer) -> None:
    downloader = Downloader(_config(), trusted_hosts=[faults.host_port])
    before = len(faults.times("/robots.txt"))
    urls = [faults.url(f"/file/red?n={n}") for n in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        reasons = [
            result.reason for result in pool.map(functools.partial(attempt_once, downloader), urls)
        ]
    assert reasons == [None] * 12
    assert len(faults.times("/robots.txt")) == before + 1
    downloader.close()


def test_robots_txt_groups_for_our_token(faults: FaultServer) -> None:
    downloader = Downloader(_config(), trusted_hosts=[faults.host_port])
    faults.robots_txt = (
        f"User-agent: {TOKEN}\nDisallow: /file/\n\nUser-agent: *\nAllow: /\n".encode()
    )
    try:
        result = attempt_once(downloader, faults.url("/file/red"))
    finally:
        faults.robots_txt = b"User-agent: *\nDisallow: /private/\n"
    assert result.reason == "download_robots_disallowed"
    assert result.detail == f"robots.txt disallows /file/red for {TOKEN!r}"
    downloader.close()


def test_an_unreadable_robots_txt_closes_the_host_for_a_while(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 9309: a 5xx robots.txt means stay out; it is asked for again after a while."""
    from paircurate.transforms.crawl import robots

    now = [1000.0]
    monkeypatch.setattr(robots.time, "monotonic", lambda: now[0])
    downloader = Downloader(_config(), trusted_hosts=[faults.host_port])
    before = len(faults.times("/robots.txt"))
    faults.robots_status = 503
    try:
        closed = [attempt_once(downloader, faults.url(f"/file/red?n={n}")) for n in range(3)]
        now[0] += robots.UNAVAILABLE_TTL_S
        faults.robots_status = 200
        reopened = attempt_once(downloader, faults.url("/file/red?n=3"))
    finally:
        faults.robots_status = 200
        downloader.close()
    assert [r.reason for r in closed] == ["download_robots_unavailable"] * 3
    assert "robots.txt unavailable (download_http_5xx)" in closed[0].detail
    assert all(r.attempts == 1 for r in closed)  # not retried at once: the answer is cached
    assert not any("/file/red" in path for _, path in faults.requests[-4:-1])
    assert reopened.reason is None
    assert len(faults.times("/robots.txt")) == before + 2
    assert REASONS["download_robots_unavailable"].retryable  # retry-failed takes it up


def test_per_host_cap_holds_concurrency_down(faults: FaultServer) -> None:
    downloader = Downloader(
        _config(max_per_host=2, download_threads=8), trusted_hosts=[faults.host_port]
    )
    faults.most_in_flight = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(
                functools.partial(attempt_once, downloader),
                [faults.url(f"/hold/{n}") for n in range(8)],
            )
        )
    assert [r.reason for r in results] == [None] * 8
    assert faults.most_in_flight == 2
    assert downloader.hosts.busy("127.0.0.1") == 0
    downloader.close()
