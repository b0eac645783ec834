"""A real HTTP server on 127.0.0.1 that serves a SyntheticWeb.

Thread per connection, HTTP/1.1 keep-alive with Content-Length, a deep
accept queue for downloaders that open many connections at once, and a stop
that returns at once: stalled "slow" responses wait on an event that stop()
sets, and open keep-alive sockets are shut down.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from .web import SyntheticWeb

logger = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its web, its stop event and its open sockets."""

    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        web: SyntheticWeb,
        slow_seconds: float,
        render_pool: ThreadPoolExecutor,
    ) -> None:
        self.web = web
        self.render_pool = render_pool
        self.slow_seconds = slow_seconds
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.served = 0
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """Clients that hang up and requests cut short by stop() are normal here."""
        if self.stopping.is_set() or isinstance(sys.exc_info()[1], OSError):
            logger.debug("request from %s ended early", client_address, exc_info=True)
        else:
            logger.exception("error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    """Answers GET and HEAD from SyntheticWeb.response."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for
    # the client's delayed ACK (40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    server: _Server
    timeout = 60  # idle keep-alive connections end after this many seconds

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass  # the client or stop() closed the socket first

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        self._answer(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        with self.server.lock:
            self.server.served += 1
        path = urlsplit(self.path).path
        response = self.server.render_pool.submit(self.server.web.response, path).result()
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if not send_body:
            return
        if response.stall and self.server.stopping.wait(self.server.slow_seconds):
            self.close_connection = True
            return
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: one debug line per request instead of a line on stderr."""
        logger.debug("%s " + format, self.address_string(), *args)


class SyntheticWebServer:
    """Serve a SyntheticWeb over HTTP in a background thread; use as a context manager."""

    def __init__(
        self,
        web: SyntheticWeb,
        host: str = "127.0.0.1",
        port: int = 0,
        slow_seconds: float = 5.0,
        render_threads: int | None = None,
    ) -> None:
        if slow_seconds < 0:
            raise ValueError(f"slow_seconds={slow_seconds} must be >= 0")
        if render_threads is not None and render_threads < 1:
            raise ValueError(f"render_threads={render_threads} must be >= 1 (or None: one per CPU)")
        self.render_threads = render_threads or os.cpu_count() or 2
        self.web = web
        self.host = host
        self.port = port
        self.slow_seconds = slow_seconds
        self._server: _Server | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Base URL, "http://HOST:PORT" (still answers after stop, for reports)."""
        if self._server is None:
            raise RuntimeError("server not started; call start() or use it in a with block")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def requests_served(self) -> int:
        """Requests answered so far (every status counts; kept after stop)."""
        return self._server.served if self._server else 0

    def url(self, index: int) -> str:
        """Full URL of a row."""
        return self.base_url + self.web.entry(index).path

    def start(self) -> SyntheticWebServer:
        """Bind (port 0 picks a free port) and serve in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("server already running")
        pool = ThreadPoolExecutor(self.render_threads, thread_name_prefix="synthweb-render")
        try:
            self._server = _Server((self.host, self.port), self.web, self.slow_seconds, pool)
        except OSError:  # the port is taken: nothing started
            pool.shutdown()
            raise
        self._pool = pool
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="synthweb-server",
            daemon=True,
        )
        self._thread.start()
        logger.info("synthetic web of %d pairs at %s", len(self.web), self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving; wakes stalled responses and closes open connections."""
        server, thread, self._thread = self._server, self._thread, None
        if server is None or thread is None:
            return
        server.stopping.set()
        server.shutdown()
        with server.lock:
            connections = list(server.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
        server.server_close()
        thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> SyntheticWebServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
