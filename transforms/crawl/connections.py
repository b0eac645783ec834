"""Keep-alive HTTP(S) connections per origin, opened only to addresses the caller has checked.

The protocol is the standard library's ``http.client``: its status line,
header and chunked-body parsing, and ``ssl`` for TLS, which checks the
certificate against the host name and sends it as SNI. What is ours is the
little around it: a pool of idle connections per origin, shared by the
download threads, and the rule that a connection goes to an address that
``connect_addresses`` gave for the host, never through a lookup of its own
that a rebinding DNS server could answer differently from the check.

urllib3's pool manager did this before, and more (retries, redirects, content
decoding), all of which the download path turned off or does itself, while
its layers cost more CPU per request than everything else the download path
does; bench/http_client.py measures the two on the same requests.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable
from http.client import HTTPConnection, HTTPException, HTTPResponse, HTTPSConnection, IncompleteRead
from typing import NamedTuple

ConnectAddresses = Callable[[str, int], tuple[str, ...]]

# A connection the server dropped while it was idle shows up only when it is
# used: the request goes out and the answer is a reset or nothing. These are
# what that looks like; a GET that meets one on a reused connection is sent
# once more on a fresh one, as browsers do.
_STALE = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, HTTPException)


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


class ConnectFailed(Exception):
    """No connection could be opened; ``kind`` says why: "timeout", "dns" (a name that
    the caller let through unresolved did not resolve), "tls" or "connection".
    """

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind


class Response:
    """A response on a pooled connection. ``finish()`` must end it: it returns the
    connection to the pool when the body was read to its end, and closes it otherwise
    (an unread body would be taken for the next response).
    """

    def __init__(self, pool: ConnectionPool, origin: Origin, connection: HTTPConnection,
                 raw: HTTPResponse):  # fmt: skip
        self._pool, self._origin, self._connection, self.raw = pool, origin, connection, raw
        self.received = 0  # body bytes read so far

    @property
    def status(self) -> int:
        return self.raw.status

    def header(self, name: str) -> str | None:
        return self.raw.headers.get(name)

    def headers(self, name: str) -> list[str]:
        """Every value of a header that may be repeated."""
        return self.raw.headers.get_all(name) or []

    def read1(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes of the body as they arrive, waiting at most ``timeout``;
        b"" at its end. Raises ``IncompleteRead`` when the connection ends before the
        Content-Length, ``TimeoutError`` when nothing came in time.
        """
        sock = self._connection.sock
        if sock is not None:
            sock.settimeout(timeout)
        block = self.raw.read1(size)
        if not block and self.raw.length:  # http.client returns b"" for a short body
            raise IncompleteRead(b"", self.raw.length)
        self.received += len(block)
        return block

    def finish(self) -> None:
        raw, connection = self.raw, self._connection
        whole = raw.isclosed() or (not raw.chunked and raw.length == 0)
        reusable = whole and not raw.will_close and connection.sock is not None
        raw.close()
        if reusable:
            self._pool.release(self._origin, connection)
        else:
            connection.close()


class ConnectionPool:
    """Idle connections for at most ``origins`` origins, ``per_origin`` each; thread-safe.

    A thread takes an idle connection or opens one, and gives it back when its
    response has been read; more threads than ``per_origin`` on one origin
    open more connections, and the ones over the count are closed when given
    back. The origin used longest ago loses its idle connections first.
    """

    def __init__(self, connect_addresses: ConnectAddresses, per_origin: int, origins: int,
                 headers: dict[str, str], tls: ssl.SSLContext | None = None):  # fmt: skip
        self.connect_addresses = connect_addresses
        self.per_origin, self.origins = per_origin, origins
        self.headers = headers
        self.tls = tls if tls is not None else ssl.create_default_context()
        self._idle: OrderedDict[Origin, list[HTTPConnection]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, origin: Origin, target: str, connect_timeout: float, timeout: float) -> Response:
        """GET ``target`` (path and query) from ``origin``; its status and headers read.

        Raises ``ConnectFailed`` when no connection opens, and ``TimeoutError``,
        ``OSError`` or ``HTTPException`` when the request or the response head fails.
        """
        connection = self._take(origin)
        if connection is not None:
            try:
                return self._exchange(origin, connection, target, timeout)
            except _STALE:
                pass  # dropped while idle: once more on a fresh connection
        connection = self._open(origin, connect_timeout)
        return self._exchange(origin, connection, target, timeout)

    def release(self, origin: Origin, connection: HTTPConnection) -> None:
        closing: list[HTTPConnection] = []
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            self._idle.move_to_end(origin)
            if len(idle) < self.per_origin:
                idle.append(connection)
            else:
                closing.append(connection)
            while len(self._idle) > self.origins:
                _, dropped = self._idle.popitem(last=False)
                closing.extend(dropped)
        for extra in closing:
            extra.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, OrderedDict()
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _exchange(
        self, origin: Origin, connection: HTTPConnection, target: str, timeout: float
    ) -> Response:
        try:
            connection.sock.settimeout(timeout)
            connection.request("GET", target, headers=self.headers)
            raw = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        return Response(self, origin, connection, raw)

    def _take(self, origin: Origin) -> HTTPConnection | None:
        """An idle connection to ``origin`` that the server has not closed, if there is one."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    return None
                connection = idle.pop()
            if _usable(connection):
                return connection
            connection.close()

    def _open(self, origin: Origin, timeout: float) -> HTTPConnection:
        if origin.scheme == "https":
            connection = HTTPSConnection(origin.host, origin.port, timeout=timeout,
                                         context=self.tls)  # fmt: skip
        else:
            connection = HTTPConnection(origin.host, origin.port, timeout=timeout)
        connection._create_connection = _pinned(self.connect_addresses, origin)
        where = f"{origin.host}:{origin.port}"
        try:
            connection.connect()
        except ssl.SSLError as error:  # also a certificate that does not verify
            failed = ConnectFailed("tls", f"TLS with {where}: {error}")
        except TimeoutError:
            failed = ConnectFailed("timeout", f"connecting to {where} timed out ({timeout:g} s)")
        except socket.gaierror as error:
            failed = ConnectFailed("dns", f"cannot resolve host {origin.host!r}: {error}")
        except OSError as error:
            failed = ConnectFailed("connection", f"cannot connect to {where}: {error}")
        else:
            return connection
        connection.close()
        raise failed


def _pinned(connect_addresses: ConnectAddresses, origin: Origin) -> Callable[..., socket.socket]:
    """``http.client``'s connect, to the addresses allowed for the host, in turn."""

    def create_connection(_address, timeout=None, source_address=None) -> socket.socket:
        failure: OSError | None = None
        for address in connect_addresses(origin.host, origin.port):
            try:
                return socket.create_connection((address, origin.port), timeout, source_address)
            except OSError as error:
                failure = error
        raise failure if failure is not None else OSError(f"no address for {origin.host}")

    return create_connection


def _usable(connection: HTTPConnection) -> bool:
    """Open, and with nothing to read: an idle connection that is readable was closed
    by the server (or sent bytes nobody asked for) and must not carry a request."""
    sock = connection.sock
    if sock is None:
        return False
    poll = select.poll()  # not select(): a crawler's descriptors pass 1024
    poll.register(sock, select.POLLIN)
    try:
        return not poll.poll(0)
    except OSError:
        return False
