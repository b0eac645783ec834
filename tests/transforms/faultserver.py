"""A threaded HTTP server on 127.0.0.1 that misbehaves on request, one route per fault.

Routes (``/<route>/<args...>``) answer with statuses, stalls, resets, redirects,
compressed bombs, opt-out headers and site-wide opt-out files (robots.txt,
/.well-known/tdmrep.json), so that the downloader meets every fault a
real crawl meets, without leaving the machine. Each request is recorded with its
arrival time, so tests can check how many attempts were made and how far apart.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from contextlib import AbstractContextManager
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .helpers import QuietHandler, serving

ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n"


def gzip_bomb(inflated_bytes: int) -> bytes:
    """A gzip body of zeros that inflates to ``inflated_bytes`` (about 1000:1)."""
    return gzip.compress(b"\0" * inflated_bytes, compresslevel=9)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` with one tiny IDAT: a pixel bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


class _FaultHandler(QuietHandler):
    server: FaultServer
    query: dict[str, str]

    def do_GET(self) -> None:
        self.server.record(self.path, dict(self.headers))
        parts = urlsplit(self.path)
        words = [unquote(word) for word in parts.path.strip("/").split("/")]
        route = getattr(self, f"_route_{words[0].replace('-', '_').replace('.', '_')}", None)
        if route is None:
            self._send(404, b"no such route")
        else:
            self.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            route(*words[1:])

    def _route_file(self, name: str) -> None:
        body, content_type = self.server.files[name]
        self._send(200, body, content_type)

    def _route_private(self, name: str) -> None:
        self._route_file(name)

    def _route_robots_txt(self) -> None:
        self._send(self.server.robots_status, self.server.robots_txt)

    def _route_status(self, code: str) -> None:
        self._send(int(code), b"<html>an error page</html>", "text/html")

    def _route_flaky(self, key: str, failures: str, status: str) -> None:
        """``status`` for the first ``failures`` requests of ``key``, then the red image."""
        retry_after = self.query.get("retry_after", "")
        if self.server.count(f"flaky/{key}") <= int(failures):
            headers = {"Retry_After": retry_after} if retry_after else {}
            self._send(int(status), b"try later", **headers)
        else:
            self._route_file("red")

    def _route__well_known(self, name: str) -> None:
        """/.well-known/tdmrep.json: ``tdmrep_status`` and ``tdmrep_json``; stalls if asked."""
        if name != "tdmrep.json":
            self._send(404, b"no such file")
        elif self.server.tdmrep_stall:
            time.sleep(self.server.stall_seconds)
            self.close_connection = True
        else:
            self._send(self.server.tdmrep_status, self.server.tdmrep_json, "application/json")

    def _route_gallery(self, *path: str) -> None:
        """The red image anywhere under /gallery/; ``?tdm=``, ``?policy=``, ``?usage=`` send
        the tdm-reservation, tdm-policy and Content-Usage headers."""
        body, content_type = self.server.files["red"]
        names = {"tdm": "tdm_reservation", "policy": "tdm_policy", "usage": "Content_Usage"}
        headers = {names[key]: value for key, value in self.query.items() if key in names}
        self._send(200, body, content_type, **headers)

    def _route_robots_tag(self, value: str) -> None:
        body, content_type = self.server.files["red"]
        self._send(200, body, content_type, X_Robots_Tag=value)

    def _route_stall(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"\xff\xd8" + b"x" * 8)
        self.wfile.flush()
        time.sleep(self.server.stall_seconds)
        self.close_connection = True

    def _route_trickle(self) -> None:
        """One byte at a time, each within the read timeout, the whole far past any deadline."""
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(int(self.server.stall_seconds / 0.05)):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass
        self.close_connection = True

    def _route_reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _route_hold(self, _name: str) -> None:
        """Answers after a short while, counting how many requests are in flight at once."""
        self.server.in_flight(+1)
        try:
            time.sleep(0.15)
            self._route_file("red")
        finally:
            self.server.in_flight(-1)

    def _route_empty(self) -> None:
        self._send(200, b"", "image/jpeg")

    def _route_gzip_bomb(self) -> None:
        self._send(200, self.server.bomb, "image/jpeg", Content_Encoding="gzip")

    def _route_gzip(self, name: str) -> None:
        body, content_type = self.server.files[name]
        self._send(200, gzip.compress(body), content_type, Content_Encoding="gzip")

    def _route_loop(self) -> None:
        self._send(302, b"moved", Location="/loop")

    def _route_redirect(self) -> None:
        self._send(302, b"moved", Location=self.query.get("to", "/"))


class FaultServer(ThreadingHTTPServer):
    __test__ = False  # not a pytest class
    request_queue_size = 256  # the default backlog of 5 drops bursts of connects
    daemon_threads = True

    def __init__(self, bomb_bytes: int = 10_000_000) -> None:
        super().__init__(("127.0.0.1", 0), _FaultHandler)
        self.files: dict[str, tuple[bytes, str]] = {}
        self.robots_txt = ROBOTS_TXT
        self.robots_status = 200
        self.tdmrep_json = b"[]"
        self.tdmrep_status = 404
        self.tdmrep_stall = False
        self.stall_seconds = 3.0
        self.bomb = gzip_bomb(bomb_bytes)
        self.requests: list[tuple[float, str]] = []
        self.headers_seen: dict[str, dict[str, str]] = {}
        self.most_in_flight = 0
        self._in_flight = 0
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((time.monotonic(), path))
            self.headers_seen[path] = headers

    def in_flight(self, change: int) -> None:
        with self._lock:
            self._in_flight += change
            self.most_in_flight = max(self.most_in_flight, self._in_flight)

    def count(self, key: str) -> int:
        """How many times ``key`` was asked for, this request included."""
        with self._lock:
            self._counts[key] += 1
            return self._counts[key]

    def times(self, path: str) -> list[float]:
        with self._lock:
            return [at for at, seen in self.requests if seen == path]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up mid-response are the point of this server

    @property
    def host_port(self) -> str:
        host, port = self.server_address[:2]
        return f"{host}:{port}"

    def url(self, path: str) -> str:
        return f"http://{self.host_port}{path}"


def running_fault_server(**options: int) -> AbstractContextManager[FaultServer]:
    return serving(FaultServer(**options))
