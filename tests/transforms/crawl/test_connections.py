"""The connection pool under the downloader: TLS, keep-alive reuse, dropped connections, bounds."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

from paircurate.schemas.config import DownloadConfig
from paircurate.transforms.crawl.connections import ConnectionPool, Deadline, Origin
from paircurate.transforms.crawl.download import Downloader

from ..helpers import TestServer, attempt_once, image_bytes, serving

RED = image_bytes(64, 48, color=(200, 30, 30))


class _Counting(TestServer):
    """The tests' image server, counting the connections it accepts."""

    def __init__(self) -> None:
        super().__init__()
        self.files["red"] = (RED, "image/png")
        self.connections = 0

    def get_request(self):
        self.connections += 1
        return super().get_request()


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def _tls_server(authority: trustme.CA, *names: str) -> _Counting:
    server = _Counting()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(*names).configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def _downloader(tls: ssl.SSLContext | None = None) -> Downloader:
    """Without robots.txt and tdmrep.json: the image requests are all the server sees."""
    config = DownloadConfig(
        timeout=2.0, allow_private_networks=True, retries=0, respect_robots_txt=False,
        respect_tdmrep=False, respect_ai_preferences=False,
    )  # fmt: skip
    return Downloader(config, tls=tls)


def _fetch(url: str, times: int = 1, tls: ssl.SSLContext | None = None) -> list:
    """``url`` downloaded ``times`` times in turn by one downloader."""
    downloader = _downloader(tls)
    try:
        return [attempt_once(downloader, url) for _ in range(times)]
    finally:
        downloader.close()


def _trusting(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


def test_https_fetches_over_one_kept_alive_connection(authority: trustme.CA) -> None:
    with serving(_tls_server(authority, "127.0.0.1")) as server:
        url = f"https://127.0.0.1:{server.server_address[1]}/image/red"
        results = _fetch(url, times=3, tls=_trusting(authority))
    assert [(r.reason, r.body) for r in results] == [(None, RED)] * 3
    assert server.connections == 1


@pytest.mark.parametrize(
    ("names", "trusted", "why"),
    [
        (("127.0.0.1",), False, "CERTIFICATE_VERIFY_FAILED"),  # signed by an unknown authority
        (("images.example",), True, "CERTIFICATE_VERIFY_FAILED"),  # for another host
    ],
)
def test_a_certificate_that_does_not_verify_is_refused_with_its_reason(
    authority: trustme.CA, names: tuple[str, ...], trusted: bool, why: str
) -> None:
    with serving(_tls_server(authority, *names)) as server:
        url = f"https://127.0.0.1:{server.server_address[1]}/image/red"
        (result,) = _fetch(url, tls=_trusting(authority) if trusted else None)
    assert result.reason == "download_error"
    assert result.detail.startswith("TLS with 127.0.0.1:") and why in result.detail
    assert server.requests == []


class _ClosingAfterEach(BaseHTTPRequestHandler):
    """Says keep-alive, then closes the connection after each response, as a host
    whose idle timeout has passed does."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(RED)))
        self.end_headers()
        self.wfile.write(RED)
        self.close_connection = True


def test_a_connection_the_server_dropped_while_idle_is_not_used_again() -> None:
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _ClosingAfterEach)) as server:
        results = _fetch(f"http://127.0.0.1:{server.server_address[1]}/image/red", times=4)
    assert [(r.reason, r.body) for r in results] == [(None, RED)] * 4


class _Framings(BaseHTTPRequestHandler):
    """The ways a body's end is told besides Content-Length: chunks, and closing."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.connections_seen.add(self.client_address)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        if self.path == "/close-delimited":
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(RED)
            self.close_connection = True
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pieces = [RED[:50], RED[50:]]
        if self.path == "/chunked-cut":
            self.wfile.write(b"%x\r\n%s\r\n" % (len(pieces[0]), pieces[0]))
            self.wfile.write(b"%x\r\n%s" % (len(pieces[1]), pieces[1][:5]))  # then hangs up
            self.close_connection = True
            return
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def framings() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Framings)
    server.connections_seen = set()
    with serving(server) as running:
        yield running


def test_chunked_bodies_are_whole_and_leave_the_connection_for_the_next(framings) -> None:
    results = _fetch(f"http://127.0.0.1:{framings.server_address[1]}/chunked", times=3)
    assert [(r.reason, r.body) for r in results] == [(None, RED)] * 3
    assert len(framings.connections_seen) == 1


def test_a_chunked_body_cut_short_is_incomplete(framings) -> None:
    (result,) = _fetch(f"http://127.0.0.1:{framings.server_address[1]}/chunked-cut")
    assert result.reason == "download_incomplete"
    assert result.detail == "the connection closed before the last chunk (55 bytes read)"


def test_a_body_that_ends_with_the_connection_is_whole(framings) -> None:
    results = _fetch(f"http://127.0.0.1:{framings.server_address[1]}/close-delimited", times=2)
    assert [(r.reason, r.body) for r in results] == [(None, RED)] * 2
    assert len(framings.connections_seen) == 2  # each closed, none reused


def test_paths_go_out_percent_encoded_and_escapes_stay_as_they_are(server: TestServer) -> None:
    (result,) = _fetch(server.url("/no-such/grün?name=bild+ä&x=%20"))
    assert result.reason == "download_http_404", result.detail  # no such route on the server
    assert server.requests[-1] == "/no-such/gr%C3%BCn?name=bild+%C3%A4&x=%20"


class _Idle:
    """Stands in for a connection to ``origin``: records that it was closed."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_idle_connections_are_bounded_per_origin_and_in_origins() -> None:
    pool = ConnectionPool(lambda host, port: (host,), per_origin=2, origins=2, headers={})
    a, b, c = (Origin("http", host, 80) for host in ("a", "b", "c"))
    first = [_Idle(a) for _ in range(3)]
    for connection in first:
        pool.release(connection)  # the third is over the per-origin count
    assert [connection.closed for connection in first] == [False, False, True]
    pool.release(_Idle(b))
    others = _Idle(c)
    pool.release(others)  # a third origin: a's idle connections, the oldest, go
    assert [connection.closed for connection in first[:2]] == [True, True]
    assert not others.closed
    pool.close()
    assert others.closed


def test_no_connection_opens_to_an_address_that_was_not_given() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    opened: list[tuple[str, int]] = []

    def addresses(host: str, port_: int) -> tuple[str, ...]:
        opened.append((host, port_))
        return ("127.0.0.2", "127.0.0.1")  # the first refuses, the second listens

    pool = ConnectionPool(addresses, per_origin=1, origins=1, headers={})
    try:
        origin = Origin("http", "images.example", port)
        connection = pool._open(origin, Deadline(2.0, 2.0), connect_timeout=2.0)
        assert connection.sock.getpeername() == ("127.0.0.1", port)
        connection.close()
    finally:
        listener.close()
    assert opened == [("images.example", port)]


@pytest.fixture
def refusing_port() -> Iterator[int]:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    yield probe.getsockname()[1]  # bound, never listening: connections are refused
    probe.close()


def test_a_refused_connection_is_a_connection_error(refusing_port: int) -> None:
    (result,) = _fetch(f"http://127.0.0.1:{refusing_port}/image/red")
    assert result.reason == "download_connection_error"
    assert result.detail.startswith(f"cannot connect to 127.0.0.1:{refusing_port}: ")
