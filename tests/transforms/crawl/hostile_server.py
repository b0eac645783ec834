"""A TCP server on 127.0.0.1 that answers each path with a script of raw bytes and pauses.

An HTTP server library cannot misbehave at will: it frames its answers, sends
its headers at once and never drips a status line. This one reads a request's
head, looks up its path, and runs the route's steps on the socket: send bytes,
drip them one at a time, pause, repeat something for ever, reset. A route may
keep the connection for the next request, so that tests can see what a client
makes of the bytes a response left behind.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

Step = Callable[[socket.socket, threading.Event], None]


def send(data: bytes) -> Step:
    return lambda sock, stop: sock.sendall(data)


def drip(data: bytes, every: float = 0.1) -> Step:
    """``data`` one byte at a time, ``every`` seconds apart: each byte within a read timeout."""

    def run(sock: socket.socket, stop: threading.Event) -> None:
        for byte in data:
            if stop.wait(every):
                return
            sock.sendall(bytes([byte]))

    return run


def forever(data: bytes, every: float = 0.0) -> Step:
    """``data`` again and again until the client goes away or the server stops."""

    def run(sock: socket.socket, stop: threading.Event) -> None:
        while not stop.wait(every):
            sock.sendall(data)

    return run


def pause(seconds: float) -> Step:
    return lambda sock, stop: stop.wait(seconds) and None


def reset() -> Step:
    """Close with RST instead of FIN (SO_LINGER with a zero timeout)."""

    def run(sock: socket.socket, stop: threading.Event) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    return run


@dataclass(frozen=True)
class Route:
    steps: tuple[Step, ...]
    keep_alive: bool = False  # read the next request on the connection after the steps


def route(*steps: Step, keep_alive: bool = False) -> Route:
    return Route(steps, keep_alive)


def response(
    body: bytes, status: str = "200 OK", headers: tuple[str, ...] = (), length: bool = True
) -> bytes:
    """A response's bytes; ``length`` adds a Content-Length of the body."""
    lines = [f"HTTP/1.1 {status}", *headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


NOT_FOUND = route(send(response(b"no such route", "404 Not Found")), keep_alive=True)


class HostileServer:
    __test__ = False  # not a pytest class

    def __init__(self, routes: dict[str, Route], default: Route = NOT_FOUND):
        self.routes, self.default = routes, default
        self.requests: list[str] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host_port}{path}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.add(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(10.0)
        try:
            while not self._stop.is_set():
                path = _request_path(sock)
                if path is None:
                    return
                with self._lock:
                    self.requests.append(path)
                answer = self.routes.get(path, self.default)
                for step in answer.steps:
                    step(sock, self._stop)
                if not answer.keep_alive:
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._open.discard(sock)
            sock.close()

    def start(self) -> HostileServer:
        self._accepting.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._accepting.join(timeout=5)
        self._listener.close()
        with self._lock:
            still_open = list(self._open)
        for sock in still_open:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _request_path(sock: socket.socket) -> str | None:
    """The path of the next request's head on ``sock``; None when the client is gone."""
    data = b""
    while b"\r\n\r\n" not in data:
        block = sock.recv(4096)
        if not block or len(data) > 65536:
            return None
        data += block
    parts = data.split(b"\r\n", 1)[0].split(b" ")
    return parts[1].decode("latin-1") if len(parts) == 3 else None


@contextmanager
def hostile_server(routes: dict[str, Route], default: Route = NOT_FOUND) -> Iterator[HostileServer]:
    server = HostileServer(routes, default).start()
    try:
        yield server
    finally:
        server.close()
