"""SyntheticWebServer: real HTTP requests for every kind of row."""

from __future__ import annotations

import http.client
import io
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from paircurate.synthweb import SyntheticWeb, SyntheticWebServer, WebEntry


@pytest.fixture(scope="module")
def web() -> SyntheticWeb:
    return SyntheticWeb(300, seed=4)


@pytest.fixture(scope="module")
def server(web: SyntheticWeb) -> Iterator[SyntheticWebServer]:
    with SyntheticWebServer(web, slow_seconds=3.0) as running:
        yield running


def _first(web: SyntheticWeb, label: str) -> WebEntry:
    return next(e for e in web if e.label == label)


def _get(url: str, timeout: float = 5.0) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_base_url_and_url(server: SyntheticWebServer, web: SyntheticWeb) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    assert server.url(3) == server.base_url + web.entry(3).path


@pytest.mark.parametrize("label", ["clean", "non_english", "near_duplicate", "tiny_image"])
def test_image_rows_serve_their_bytes(
    server: SyntheticWebServer, web: SyntheticWeb, label: str
) -> None:
    entry = _first(web, label)
    status, content_type, body = _get(server.url(entry.index))
    assert status == 200
    assert content_type == f"image/{entry.image_format}"
    assert body == web.image_bytes(entry.index)


def test_duplicate_rows(server: SyntheticWebServer, web: SyntheticWeb) -> None:
    same_url = _first(web, "duplicate_url")
    assert server.url(same_url.index) == server.url(same_url.duplicate_of)
    same_bytes = _first(web, "duplicate_bytes")
    original_body = _get(server.url(same_bytes.duplicate_of))[2]
    assert _get(server.url(same_bytes.index))[2] == original_body


def test_broken_rows(server: SyntheticWebServer, web: SyntheticWeb) -> None:
    assert _get(server.url(_first(web, "http_404").index))[0] == 404
    assert _get(server.url(_first(web, "http_500").index))[0] == 500
    assert _get(server.base_url + "/nothing/here")[0] == 404
    status, content_type, body = _get(server.url(_first(web, "html").index))
    assert (status, content_type) == (200, "image/jpeg")
    assert body.lstrip().lower().startswith(b"<!doctype html>")


def test_truncated_body_fails_to_load(server: SyntheticWebServer, web: SyntheticWeb) -> None:
    entry = _first(web, "truncated")
    status, content_type, body = _get(server.url(entry.index))
    assert (status, content_type) == (200, "image/jpeg")
    assert len(body) == len(web.image_bytes(entry.index))
    with pytest.raises(OSError):
        Image.open(io.BytesIO(body)).load()


def test_keep_alive_and_query_strings(server: SyntheticWebServer, web: SyntheticWeb) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(server.base_url.rsplit(":", 1)[1]))
    for index in range(5):
        entry = web.entry(index)
        connection.request("GET", entry.path + "?x=1")
        response = connection.getresponse()
        body = response.read()
        assert response.status == (200 if entry.label not in ("http_404", "http_500") else 404)
        assert int(response.headers["Content-Length"]) == len(body)
    connection.close()


def test_many_concurrent_requests(server: SyntheticWebServer, web: SyntheticWeb) -> None:
    clean = [e for e in web if e.label == "clean"][:64]
    before = server.requests_served
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda e: _get(server.url(e.index)), clean))
    assert all(status == 200 for status, _, _ in results)
    assert server.requests_served - before == len(clean)


def test_slow_row_stalls_and_stop_returns_fast() -> None:
    web = SyntheticWeb(300, seed=4)
    slow = _first(web, "slow")
    server = SyntheticWebServer(web, slow_seconds=30.0).start()
    try:
        with pytest.raises((TimeoutError, socket.timeout)):
            _get(server.url(slow.index), timeout=0.5)
    finally:
        started = time.monotonic()
        server.stop()
    assert time.monotonic() - started < 2.0
    assert server.requests_served == 1


def test_nothing_served_without_requests(web: SyntheticWeb) -> None:
    with SyntheticWebServer(web) as idle:
        assert idle.requests_served == 0
    assert idle.requests_served == 0
