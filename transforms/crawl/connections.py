"""Keep-alive HTTP(S) connections per origin, opened only to addresses the caller has checked.

A request runs under one ``Deadline`` in every phase: connecting, the TLS
handshake, sending, the status line, the headers, interim 1xx responses, the
body, its chunk-size lines and its trailers. No read waits longer than the
read timeout or what is left of the deadline, so a server that drips one byte
at a time, each within the read timeout, is cut off when the deadline passes.

The response is read by http1.py, which bounds what a server may repeat and
decides the body's framing; a connection goes back to the pool only when
http1.py says that its response was framed unambiguously and read to its end.
TLS is the standard library's ``ssl``, which checks the certificate against the
host name and sends it as SNI. A connection goes to an address that
``connect_addresses`` gave for the host, never through a lookup of its own
that a rebinding DNS server could answer differently from the check.

urllib3's pool manager and ``http.client`` did this before; their layers cost
more CPU per request than everything else the download path does, and neither
bounds every phase by one deadline. bench/http_client.py measures ours against
urllib3 on the same requests, and bench/http_parsers.py the reader against h11
and ``http.client`` on the same bytes.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from paircurate.transforms.crawl.http1 import (
    DEFAULT_LIMITS,
    Body,
    ConnectionLost,
    Framing,
    Head,
    Limits,
    Reader,
    framing,
    read_head,
)

ConnectAddresses = Callable[[str, int], tuple[str, ...]]

# A connection the server dropped while it was idle shows up only when it is
# used: the request goes out and the answer is a reset or nothing. A GET that
# meets one of these before any byte of its answer, on a reused connection, is
# sent once more on a fresh one, as browsers do.
_STALE = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
_DEFAULT_PORTS = {"http": 80, "https": 443}


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


class Deadline:
    """The moment a request must be over, and the longest wait for any one read."""

    def __init__(self, seconds: float, read_timeout: float, start: float | None = None):
        self.seconds, self.read_timeout = seconds, read_timeout
        self.at = (time.monotonic() if start is None else start) + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def wait(self, longest: float | None = None) -> float:
        """Seconds the next wait may take; raises ``TimeoutError`` once the deadline passed."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the deadline of {self.seconds:g} s passed")
        return min(self.read_timeout if longest is None else longest, left)

    def expired(self, waited: float) -> TimeoutError:
        """The error for a wait of ``waited`` seconds that ended with nothing."""
        if waited < self.read_timeout:
            return TimeoutError(f"the deadline of {self.seconds:g} s passed")
        return TimeoutError(f"no data for {self.read_timeout:g} s")


class Connection:
    """A socket to one origin and the reader of its responses."""

    def __init__(self, sock: socket.socket, origin: Origin):
        self.sock, self.origin = sock, origin
        self.deadline: Deadline | None = None
        self.reader = Reader(self._receive)

    def send(self, data: bytes, deadline: Deadline) -> None:
        self.deadline = deadline
        waited = deadline.wait()
        self.sock.settimeout(waited)  # sendall's timeout bounds the whole call
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise deadline.expired(waited) from None

    def _receive(self, size: int) -> bytes:
        deadline = self.deadline
        assert deadline is not None, "a request sets the deadline before its response is read"
        waited = deadline.wait()
        self.sock.settimeout(waited)
        try:
            return self.sock.recv(size)
        except TimeoutError:
            raise deadline.expired(waited) from None

    def idle(self) -> bool:
        """Open, and with nothing to read: an idle connection that is readable was closed
        by the server (or sent bytes nobody asked for) and must not carry a request."""
        poll = select.poll()  # not select(): a crawler's descriptors pass 1024
        try:
            poll.register(self.sock, select.POLLIN)
            return not poll.poll(0)
        except (OSError, ValueError):  # ValueError: the socket was closed
            return False

    def close(self) -> None:
        self.sock.close()


class Response:
    """A response on a pooled connection. ``finish()`` must end it: it returns the
    connection to the pool when the body was read to its end and framed so that
    the next response cannot be mistaken, and closes it otherwise.
    """

    def __init__(self, pool: ConnectionPool, connection: Connection, head: Head, frame: Framing):
        self._pool, self._connection, self._head, self._framing = pool, connection, head, frame
        self._body = Body(connection.reader, frame, pool.limits)
        self.received = 0  # body bytes read so far

    @property
    def status(self) -> int:
        return self._head.status

    @property
    def length(self) -> int | None:
        """The Content-Length that frames the body, if one does."""
        return self._framing.length

    def header(self, name: str) -> str | None:
        return self._head.first(name.lower())

    def headers(self, name: str) -> list[str]:
        """Every value of a header that may be repeated."""
        return self._head.every(name.lower())

    def read1(self, size: int) -> bytes:
        """Up to ``size`` bytes of the body as they arrive, within the request's deadline;
        b"" at its end. Raises http1's ``Incomplete`` when the connection ends early,
        ``TimeoutError`` when the read timeout or the deadline passes.
        """
        block = self._body.read1(size)
        self.received += len(block)
        return block

    def finish(self) -> None:
        connection = self._connection
        reusable = self._framing.reusable and self._body.done and not connection.reader.pending
        if reusable:
            self._pool.release(connection)
        else:
            connection.close()


class ConnectionPool:
    """Idle connections for at most ``origins`` origins, ``per_origin`` each; thread-safe.

    A thread takes an idle connection or opens one, and gives it back when its
    response has been read; more threads than ``per_origin`` on one origin
    open more connections, and the ones over the count are closed when given
    back. The origin used longest ago loses its idle connections first.
    """

    def __init__(
        self,
        connect_addresses: ConnectAddresses,
        per_origin: int,
        origins: int,
        headers: dict[str, str],
        tls: ssl.SSLContext | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ):
        self.connect_addresses = connect_addresses
        self.per_origin, self.origins = per_origin, origins
        self.tls = tls if tls is not None else ssl.create_default_context()
        self.limits = limits
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode()
        self._idle: OrderedDict[Origin, list[Connection]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, origin: Origin, target: str, deadline: Deadline, connect_timeout: float
    ) -> Response:
        """GET ``target`` (path and query) from ``origin``; its status and headers read.

        Raises ``ConnectFailed`` when no connection opens, ``TimeoutError`` when
        a wait passes the read timeout or the deadline, http1's errors when the
        response head is lost, malformed or over a limit, and ``OSError``.
        """
        request = self.request_bytes(origin, target)
        connection = self._take(origin)
        if connection is not None:
            try:
                return self._exchange(connection, request, deadline)
            except _STALE:
                pass  # dropped while idle: once more on a fresh connection
            except ConnectionLost as lost:
                if lost.received:
                    raise
        connection = self._open(origin, deadline, connect_timeout)
        return self._exchange(connection, request, deadline)

    def release(self, connection: Connection) -> None:
        closing: list[Connection] = []
        origin = connection.origin
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

    def request_bytes(self, origin: Origin, target: str) -> bytes:
        """The GET request for ``target`` (path and query, percent-encoded) on ``origin``."""
        if not target.isascii() or not target.isprintable() or " " in target:
            raise ValueError(f"the request target {target!r} is not percent-encoded")
        host = f"[{origin.host}]" if ":" in origin.host else origin.host
        if origin.port != _DEFAULT_PORTS.get(origin.scheme):
            host = f"{host}:{origin.port}"
        return b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
            target.encode(),
            host.encode("ascii"),
            self._fixed,
        )

    def _exchange(self, connection: Connection, request: bytes, deadline: Deadline) -> Response:
        try:
            connection.send(request, deadline)
            connection.reader.start()
            head = read_head(connection.reader, self.limits)
            return Response(self, connection, head, framing(head))
        except BaseException:
            connection.close()
            raise

    def _take(self, origin: Origin) -> Connection | None:
        """An idle connection to ``origin`` that the server has not closed, if there is one."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    return None
                connection = idle.pop()
            if connection.idle():
                return connection
            connection.close()

    def _open(self, origin: Origin, deadline: Deadline, connect_timeout: float) -> Connection:
        where = f"{origin.host}:{origin.port}"
        try:
            sock = self._connect(origin, deadline, connect_timeout)
        except TimeoutError:
            raise ConnectFailed("timeout", f"connecting to {where} timed out") from None
        except socket.gaierror as error:
            detail = f"cannot resolve host {origin.host!r}: {error}"
            raise ConnectFailed("dns", detail) from None
        except OSError as error:
            raise ConnectFailed("connection", f"cannot connect to {where}: {error}") from None
        if origin.scheme == "https":
            sock = self._handshake(sock, origin, deadline, connect_timeout)
        return Connection(sock, origin)

    def _connect(self, origin: Origin, deadline: Deadline, connect_timeout: float) -> socket.socket:
        """A socket to the first of the host's allowed addresses that accepts, in turn."""
        failure: OSError | None = None
        for address in self.connect_addresses(origin.host, origin.port):
            timeout = deadline.wait(connect_timeout)
            try:
                sock = socket.create_connection((address, origin.port), timeout)
            except TimeoutError:
                raise
            except OSError as error:
                failure = error
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        raise failure if failure is not None else OSError(f"no address for {origin.host}")

    def _handshake(
        self, sock: socket.socket, origin: Origin, deadline: Deadline, connect_timeout: float
    ) -> ssl.SSLSocket:
        """TLS over ``sock``; the socket's timeout bounds the whole handshake, not each read."""
        where = f"{origin.host}:{origin.port}"
        try:
            sock.settimeout(deadline.wait(connect_timeout))
            return self.tls.wrap_socket(sock, server_hostname=origin.host)
        except ssl.SSLError as error:  # also a certificate that does not verify
            failed = ConnectFailed("tls", f"TLS with {where}: {error}")
        except TimeoutError:
            failed = ConnectFailed("timeout", f"the TLS handshake with {where} timed out")
        except OSError as error:
            failed = ConnectFailed("connection", f"TLS with {where}: {error}")
        sock.close()
        raise failed
