"""Small images made in memory, and a local HTTP server with one route per outcome."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

RED = (200, 30, 30)
BLUE = (30, 30, 200)


def image_bytes(
    width: int, height: int, fmt: str = "PNG", color: tuple[int, ...] = RED, mode: str = "RGB"
) -> bytes:
    """A solid image of one colour, encoded in ``fmt``."""
    return encoded(Image.new(mode, (width, height), color), fmt)


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    """``image`` saved in ``fmt`` with Pillow's save ``options``."""
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


class QuietHandler(BaseHTTPRequestHandler):
    """Routes ``/name/args`` to ``_route_name(*args)``, logs nothing; the fault server's base."""

    protocol_version = "HTTP/1.1"  # keep-alive, as real image hosts do
    server: TestServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        parts = self.path.strip("/").split("/")
        route = getattr(self, f"_route_{parts[0].replace('-', '_')}", None)
        if route is None:
            self._send(404, b"no such route")
        else:
            route(*parts[1:])

    def _send(
        self, status: int, body: bytes, content_type: str = "text/plain", **headers: str
    ) -> None:
        """A whole response; ``x_robots_tag="noai"`` sends the header X-Robots-Tag."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _route_image(self, name: str) -> None:
        body, content_type = self.server.files[name]
        self._send(200, body, content_type)

    def _route_status(self, code: str) -> None:
        self._send(int(code), b"<html>an error page</html>", "text/html")

    def _route_slow(self) -> None:
        time.sleep(self.server.slow_seconds)
        self._send(200, b"late")

    def _route_big(self, size: str) -> None:
        self._send(200, b"x" * int(size), "image/jpeg")

    def _route_big_stream(self, size: str) -> None:
        # No Content-Length: the body ends when the connection closes.
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"x" * int(size))
        self.close_connection = True

    def _route_empty(self) -> None:
        self._send(200, b"", "image/jpeg")

    def _route_short(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", "500")
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.close_connection = True

    def _route_redirect(self, hops: str) -> None:
        left = int(hops)
        if left == 0:
            self._route_image("red")
        else:
            self._redirect(f"/redirect/{left - 1}")

    def _route_loop(self) -> None:
        self._redirect("/loop")

    def _redirect(self, location: str) -> None:
        body = b"moved"
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class TestServer(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 drops bursts of connects
    __test__ = False  # not a pytest class
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), QuietHandler)
        self.requests: list[str] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.slow_seconds = 1.0

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that drops a connection mid-response is part of the tests.
        pass

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    """Serve ``server`` from a thread for the block; shut it down and close it after."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def running_server() -> AbstractContextManager[TestServer]:
    return serving(TestServer())


CRASH_MARKER = b"crash the decoder"
HANG_MARKER = b"hang the decoder"


def process_or_crash(body: bytes, config):
    """``process_image``, except that a body starting with CRASH_MARKER kills its process
    and one starting with HANG_MARKER never ends.

    Stands in for a codec that segfaults on hostile bytes; module-level so that
    an image pool's process (forked from a fresh interpreter) can import it.
    """
    import os

    from paircurate.transforms.crawl.images import process_image

    if body.startswith(CRASH_MARKER):
        os._exit(70)
    if body.startswith(HANG_MARKER):
        import time

        time.sleep(3600)
    return process_image(body, config)


def attempt_once(downloader, url: str):
    """``url`` downloaded as fetch_many downloads it: one ``Downloader.attempt``.

    The result must be final (a test downloader with retries=0, or an outcome
    that is not retried); a test of retries goes through ``fetch_many``, whose
    schedule is the only place retries wait.
    """
    from paircurate.transforms.crawl.download import UrlAttempts

    result, wait = downloader.attempt(UrlAttempts(url))
    assert wait is None, f"{url}: a retry is due in {wait:.2f} s; test retries with fetch_many"
    return result
