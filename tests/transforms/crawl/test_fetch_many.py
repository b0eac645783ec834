"""fetch_many over the local HTTP server: one result per pair, reasons and images."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from paircurate.schemas.config import DownloadConfig, ImageConfig
from paircurate.transforms.crawl import fetch_many as fetch
from paircurate.transforms.crawl.download import Downloader
from paircurate.transforms.crawl.fetch_many import FetchResult, fetch_many

from ..helpers import TestServer, decoded

IMAGE_CONFIG = ImageConfig(
    image_size=32, resize_mode="border", encode_format="png", min_image_size=16
)


@pytest.fixture
def downloader() -> Iterator[Downloader]:
    config = DownloadConfig(timeout=2.0, max_bytes=10_000, allow_private_networks=True, retries=0)
    running = Downloader(config)
    yield running
    running.close()


def fetch_alone(uid: str, url: str, downloader: Downloader) -> FetchResult:
    (result,) = fetch_many([(uid, url)], downloader, IMAGE_CONFIG, threads=1)
    return result


def test_fetch_many_one_pair_success_carries_every_measurement(
    server: TestServer, downloader: Downloader
) -> None:
    body = server.files["red"][0]
    result = fetch_alone("uid-red", server.url("/image/red"), downloader)
    assert result.uid == "uid-red"
    assert result.reason is None
    measured = dict(result.measurements)
    assert measured.pop("download_ms") > 0
    # Hashes of the decoded image are images.py's business; here they only need to be there.
    assert isinstance(measured.pop("image_sha256"), str)
    assert isinstance(measured.pop("phash"), str)
    assert measured == {
        "http_status": 200,
        "content_type": "image/png",
        "reason": None,
        "reason_detail": None,
        "bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "md5": hashlib.md5(body).hexdigest(),
        "sha1": hashlib.sha1(body).hexdigest(),
        "original_width": 64,
        "original_height": 48,
        "original_format": "PNG",
        "width": 32,
        "height": 32,
        "image_format": "png",
    }
    image = decoded(result.image)
    assert (image.format, image.size) == ("PNG", (32, 32))


def test_fetch_many_one_pair_download_failure_has_no_image_measurements(
    server: TestServer, downloader: Downloader
) -> None:
    result = fetch_alone("uid-404", server.url("/status/404"), downloader)
    assert result.image is None
    assert result.reason == "download_http_404"
    assert set(result.measurements) == {
        "http_status",
        "content_type",
        "download_ms",
        "reason",
        "reason_detail",
    }
    assert result.measurements["http_status"] == 404


def test_fetch_many_one_pair_refused_image_keeps_measurements_but_no_bytes(
    server: TestServer, downloader: Downloader
) -> None:
    result = fetch_alone("uid-tiny", server.url("/image/tiny"), downloader)
    assert result.reason == "image_too_small"
    assert result.image is None
    assert result.measurements["original_width"] == 8
    assert result.measurements["bytes"] == len(server.files["tiny"][0])
    assert result.measurements["width"] is None


def test_fetch_many_returns_one_result_per_uid(server: TestServer, downloader: Downloader) -> None:
    expected = {
        "ok-red": ("/image/red", None),
        "ok-blue": ("/image/blue", None),
        "ok-redirect": ("/redirect/2", None),
        "gone": ("/status/410", "download_http_410"),
        "missing": ("/status/404", "download_http_404"),
        "server-error": ("/status/502", "download_http_5xx"),
        "html": ("/image/page", "image_decode_error"),
        "tiny": ("/image/tiny", "image_too_small"),
        "empty": ("/empty", "download_empty"),
        "bad-scheme": ("ftp", "unsupported_scheme"),
    }
    pairs = [
        (uid, "ftp://example.com/a.jpg" if path == "ftp" else server.url(path))
        for uid, (path, _) in expected.items()
    ]
    results = list(fetch_many(pairs, downloader, IMAGE_CONFIG, threads=2))
    assert sorted(r.uid for r in results) == sorted(expected)
    by_uid = {r.uid: r for r in results}
    assert {uid: r.reason for uid, r in by_uid.items()} == {
        uid: reason for uid, (_, reason) in expected.items()
    }
    for uid, result in by_uid.items():
        if result.reason is None:
            image = decoded(result.image)
            assert (image.format, image.size) == ("PNG", (32, 32)), uid
        else:
            assert result.image is None, uid
    assert by_uid["ok-blue"].measurements["original_format"] == "JPEG"
    assert (
        by_uid["ok-blue"].measurements["original_width"],
        by_uid["ok-blue"].measurements["original_height"],
    ) == (30, 40)


def test_fetch_many_of_nothing(downloader: Downloader) -> None:
    assert list(fetch_many([], downloader, IMAGE_CONFIG, threads=4)) == []


def test_fetch_many_is_lazy_over_its_input(server: TestServer, downloader: Downloader) -> None:
    # A generator input is consumed as results are taken, not all at once.
    consumed: list[str] = []

    def pairs() -> Iterator[tuple[str, str]]:
        for index in range(12):
            consumed.append(str(index))
            yield str(index), server.url("/image/red")

    results = fetch_many(pairs(), downloader, IMAGE_CONFIG, threads=1)
    first = next(results)
    assert first.reason is None
    assert len(consumed) <= 3
    rest = list(results)
    assert sorted(r.uid for r in [first, *rest]) == sorted(str(i) for i in range(12))


def test_a_byte_budget_of_one_lets_one_body_in_at_a_time(server: TestServer) -> None:
    """With the cap reached by any one body, eight threads download one after another."""
    downloader = Downloader(
        DownloadConfig(allow_private_networks=True, retries=0, max_bytes_in_flight=1)
    )
    paths = ["/image/red", "/image/blue", "/image/tiny", "/status/404", "/big/5000"] * 4
    pairs = [(f"uid-{i}", server.url(path)) for i, path in enumerate(paths)]
    try:
        results = list(fetch_many(pairs, downloader, IMAGE_CONFIG, threads=8))
    finally:
        downloader.close()
    assert len(results) == len(paths)
    largest = max(r.measurements.get("bytes") or 0 for r in results)
    assert largest == 5000
    assert downloader.budget.peak == largest  # never two bodies at once
    assert downloader.budget.used == 0  # every body, failed or not, gave its bytes back


def test_the_byte_budget_counts_bodies_until_their_image_is_done(server: TestServer) -> None:
    downloader = Downloader(DownloadConfig(allow_private_networks=True, retries=0))
    pairs = [(f"uid-{i}", server.url("/image/red")) for i in range(12)]
    try:
        results = list(fetch_many(pairs, downloader, IMAGE_CONFIG, threads=4))
    finally:
        downloader.close()
    body = results[0].measurements["bytes"]
    assert body <= downloader.budget.peak <= 4 * body
    assert downloader.budget.used == 0


def test_image_work_in_threads_stays_within_the_process_slots_across_calls(
    server: TestServer, downloader: Downloader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two fetch_many calls at once (two bundles of one worker) share the process's slots."""
    lock, busy, peak = threading.Lock(), [0], [0]
    real = fetch.process_image

    def counted(body, config):
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        time.sleep(0.02)  # long enough for the other threads to pile up at the slots
        try:
            return real(body, config)
        finally:
            with lock:
                busy[0] -= 1

    monkeypatch.setattr(fetch, "process_image", counted)
    url = server.url("/image/red")

    def bundle(name: str) -> list[FetchResult]:
        pairs = [(f"{name}-{i}", url) for i in range(10)]
        return list(fetch_many(pairs, downloader, IMAGE_CONFIG, threads=8, image_threads=2))

    with ThreadPoolExecutor(2) as bundles:
        results = [r for done in bundles.map(bundle, ("a", "b")) for r in done]
    assert len(results) == 20 and all(r.reason is None for r in results)
    assert peak[0] == 2  # not 2 per call, and the slots were used


def test_image_slots_are_one_per_count_per_process_and_zero_means_every_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fetch.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert fetch.image_slots(0) is fetch.image_slots(3)
    assert fetch.image_slots(2) is fetch.image_slots(2)
    assert fetch.image_slots(2) is not fetch.image_slots(3)
    with pytest.raises(ValueError, match="0 \\(one per core\\) or more"):
        fetch.image_slots(-1)


def _comparable(result: FetchResult) -> tuple:
    """A result without its timing, which differs from run to run."""
    measured = {k: v for k, v in result.measurements.items() if k != "download_ms"}
    return result.uid, measured, result.image


@pytest.mark.parametrize("where", ["download", "image work"])
def test_a_failure_injected_into_one_url_stays_in_its_row(
    server: TestServer, downloader: Downloader, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever one URL's fetch raises is that row's download_error, with the exception's
    class and message; every other row of the batch comes back as it does alone."""
    pairs = [
        (f"uid-{n}", server.url(f"/image/{name}?n={n}"))
        for n, name in enumerate(["red", "blue", "red", "tiny", "blue"])
    ]
    pairs.append(("uid-404", server.url("/image/none")))
    alone = {uid: _comparable(fetch_alone(uid, url, downloader)) for uid, url in pairs}
    doomed = server.url("/image/red?doomed")
    if where == "download":
        real = Downloader._follow

        def follow(self, url, *args):
            if url == doomed:
                raise RuntimeError("injected into one URL")
            return real(self, url, *args)

        monkeypatch.setattr(Downloader, "_follow", follow)
    else:
        real_measure = fetch._measure

        def measure(uid, download, *args):
            if uid == "uid-doomed":
                raise RuntimeError("injected into one URL")
            return real_measure(uid, download, *args)

        monkeypatch.setattr(fetch, "_measure", measure)
    batch = [*pairs[:3], ("uid-doomed", doomed), *pairs[3:]]
    results = {r.uid: r for r in fetch_many(batch, downloader, IMAGE_CONFIG, threads=3)}
    failed = results.pop("uid-doomed")
    assert failed.reason == "download_error"
    assert failed.measurements["reason_detail"] == "RuntimeError: injected into one URL"
    assert failed.image is None
    assert {uid: _comparable(result) for uid, result in results.items()} == alone
