"""A strict reader of HTTP/1.1 responses (RFC 9112), over any source of bytes, within limits.

The server is taken to lie. Everything it can repeat is bounded (header
lines and bytes, interim 1xx responses, chunk-size lines, trailer lines),
numbers are ASCII digits only, and the body's framing is decided once, from
the head, as RFC 9112 section 6.3 has it:

- 1xx answers (100, 102, 103 and any other but 101) are interim: their heads
  are read and skipped, and the final response follows;
- ``Transfer-Encoding: chunked`` frames the body in chunks; beside a
  ``Content-Length`` it still does, but the connection is closed after the
  response, as such a message may be an attempt at smuggling;
- ``Content-Length`` values that disagree, or are not plain digits, make the
  framing unknowable: the response is refused;
- otherwise the body ends when the connection does.

A connection may carry another request only when its response was framed by
a length or by chunks, read to its end, said neither ``Connection: close`` nor
HTTP/1.0, and left no byte unread behind it (``Reader.pending``).

It is ours rather than h11 (strict too, but costlier per response) or
``http.client`` (bounds no phase but the body): bench/http_parsers.py.

The reader does no I/O of its own: it calls ``receive(size)``, which returns
the next bytes (``b""`` when the connection has ended) and raises what the
transport raises, timeouts included. connections.py gives it a socket under a
deadline; the fuzz tests give it slices of bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Receive = Callable[[int], bytes]
_RECEIVE_SIZE = 1 << 16
_LENGTH_DIGITS = 18  # 10^18 bytes: no body is larger, and int() never sees a long string
_CHUNK_SIZE_DIGITS = 15  # hex digits: 2^60 bytes


@dataclass(frozen=True)
class Limits:
    """What one response may send before it is refused; each over-limit error names its limit."""

    head_bytes: int = 64 * 1024  # status line and header lines of one head, each head
    header_lines: int = 100
    interim_responses: int = 8  # 1xx heads before the final one
    chunk_line_bytes: int = 4096  # a chunk-size line with its extensions
    trailer_lines: int = 100  # also within head_bytes in all


DEFAULT_LIMITS = Limits()


class ResponseError(Exception):
    """The response cannot be read; subclasses say why."""


class Malformed(ResponseError):
    """The bytes break HTTP/1.1's syntax or framing rules."""


class OverLimit(ResponseError):
    """The response sent more of something than ``Limits`` allows."""


class UnsupportedCoding(ResponseError):
    """A transfer coding other than chunked: the body cannot be framed."""


class ConnectionLost(ResponseError):
    """The connection ended before the response head was whole; ``received`` bytes of it came."""

    def __init__(self, message: str, received: int):
        super().__init__(message)
        self.received = received


class Incomplete(ResponseError):
    """The connection ended before the body's framing said it would."""


class Reader:
    """Buffered bytes from ``receive``, consumed by lines, by heads and by body blocks.

    ``phase`` names what is being read, for timeout messages.
    """

    def __init__(self, receive: Receive):
        self._receive = receive
        self._buffer = bytearray()
        self.phase = "status line"
        self.received = 0  # bytes received since the last ``start``

    @property
    def pending(self) -> int:
        """Bytes received and not yet consumed: after a whole response, bytes nobody asked for."""
        return len(self._buffer)

    def start(self) -> None:
        self.received = len(self._buffer)
        self.phase = "status line"

    def fill(self) -> bool:
        """Receive more; False when the connection has ended."""
        try:
            data = self._receive(_RECEIVE_SIZE)
        except TimeoutError as error:
            raise TimeoutError(f"{error} while reading the {self.phase}") from None
        self._buffer += data
        self.received += len(data)
        return bool(data)

    def take(self, size: int) -> bytes:
        """Up to ``size`` bytes: buffered ones first, else one receive; b"" at the end."""
        buffer = self._buffer
        if buffer:
            block = bytes(buffer[:size])
            del buffer[:size]
            return block
        try:
            block = self._receive(size)
        except TimeoutError as error:
            raise TimeoutError(f"{error} while reading the {self.phase}") from None
        self.received += len(block)
        return block

    def head_block(self, limit: int, lost: str, prefix: bytes = b"") -> bytes:
        """Bytes up to and including the first empty line, at most ``limit`` of them;
        refused as soon as they do not start with ``prefix``."""
        buffer, scanned = self._buffer, 0
        while True:
            if buffer[: len(prefix)] != prefix[: len(buffer)]:
                raise Malformed(f"not an HTTP/1.x response: {_shown(bytes(buffer[:20]))}")
            end = _blank_line_end(buffer, scanned)
            if end >= 0:
                if end > limit:
                    break
                block = bytes(buffer[:end])
                del buffer[:end]
                return block
            if len(buffer) > limit:
                break
            scanned = max(0, len(buffer) - 2)
            if not self.fill():
                raise ConnectionLost(lost, self.received)
        raise OverLimit(f"over {limit} bytes in the {self.phase}")

    def line(self, limit: int) -> bytes:
        """One line without its CRLF (or bare LF), at most ``limit`` bytes."""
        buffer, scanned = self._buffer, 0
        while True:
            end = buffer.find(b"\n", scanned)
            if end >= 0:
                if end > limit:
                    break
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if len(buffer) > limit:
                break
            scanned = len(buffer)
            if not self.fill():
                raise Incomplete(f"the connection closed in the {self.phase}")
        raise OverLimit(f"over {max(limit, 0)} bytes in the {self.phase}")


def _blank_line_end(buffer: bytearray, start: int) -> int:
    """Where the first empty line (CRLF CRLF, or bare LFs) ends, or -1."""
    crlf = buffer.find(b"\n\r\n", start)
    lf = buffer.find(b"\n\n", start, crlf + 2 if crlf >= 0 else len(buffer))
    if lf >= 0:
        return lf + 2
    return crlf + 3 if crlf >= 0 else -1


_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([^\x00\r]*))?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(rb"[0-9]{1,%d}" % _LENGTH_DIGITS)
_HEX = re.compile(rb"[0-9A-Fa-f]{1,%d}" % _CHUNK_SIZE_DIGITS)


@dataclass
class Head:
    """A final response's status line and headers (names in lower case, values as sent)."""

    version: int  # 0 for HTTP/1.0, 1 for HTTP/1.1
    status: int
    reason: str
    fields: dict[str, list[str]]

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def every(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    def tokens(self, name: str) -> list[str]:
        """The comma-separated list of every ``name`` field, in lower case."""
        found = []
        for value in self.every(name):
            found.extend(token.strip().lower() for token in value.split(","))
        return [token for token in found if token]


def read_head(reader: Reader, limits: Limits = DEFAULT_LIMITS) -> Head:
    """The final response's head; interim 1xx heads before it are read and skipped."""
    reader.start()
    for _ in range(limits.interim_responses + 1):
        head = _one_head(reader, limits)
        if not 100 <= head.status < 200:
            return head
        if head.status == 101:
            raise Malformed("101 Switching Protocols answers a request that asked for no upgrade")
    raise OverLimit(f"more than {limits.interim_responses} interim (1xx) responses")


def _one_head(reader: Reader, limits: Limits) -> Head:
    reader.phase = "status line and headers"
    lost = "the connection closed before the response head was whole"
    block = reader.head_block(limits.head_bytes, lost, prefix=b"HTTP/1.")
    lines = block.split(b"\n")[:-2]  # the last two: the empty line and what follows it
    if len(lines) - 1 > limits.header_lines:
        raise OverLimit(f"more than {limits.header_lines} header lines")
    status_line = _chomp(lines[0])
    matched = _STATUS_LINE.fullmatch(status_line)
    if matched is None:
        raise Malformed(f"not an HTTP/1.x status line: {_shown(status_line)}")
    status = int(matched[2])
    if status < 100:
        raise Malformed(f"status {status} is not a status code (100-599)")
    if status > 599:
        raise Malformed(f"status {status} is not a status code (100-599)")
    reason = (matched[3] or b"").decode("latin-1")
    return Head(int(matched[1]), status, reason, parse_fields(lines[1:]))


def parse_fields(lines: list[bytes]) -> dict[str, list[str]]:
    """Header (or trailer) lines as {lower-case name: [values]}; obs-fold lines are unfolded."""
    fields: dict[str, list[str]] = {}
    values: list[str] | None = None
    for raw in lines:
        line = _chomp(raw)
        if line[:1] in (b" ", b"\t"):  # obs-fold: RFC 9112 5.2 has it replaced by a space
            if values is None:
                raise Malformed("a folded line before any header")
            values[-1] = f"{values[-1]} {_value(line)}".strip()
            continue
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise Malformed(f"not a header line: {_shown(line)}")
        values = fields.setdefault(name.decode("ascii").lower(), [])
        values.append(_value(value))
    return fields


def _chomp(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def _value(raw: bytes) -> str:
    if b"\0" in raw or b"\r" in raw:
        raise Malformed(f"a header value holds NUL or CR: {_shown(raw)}")
    return raw.strip(b" \t").decode("latin-1")


def _shown(raw: bytes) -> str:
    return repr(raw[:80])[1:]


@dataclass(frozen=True)
class Framing:
    """How the body ends: after ``length`` bytes, after the last chunk, or with the connection.

    ``reusable``: whether the connection may carry another request once the
    body is read to its end.
    """

    length: int | None  # None: chunked or until the connection closes
    chunked: bool
    reusable: bool


def framing(head: Head) -> Framing:
    """The body's framing, per RFC 9112 section 6.3, for a response to GET."""
    persistent = head.version == 1 and "close" not in head.tokens("connection")
    lengths = head.every("content-length")
    if head.status in (204, 304):
        return Framing(0, False, persistent and not lengths)
    codings = head.every("transfer-encoding")
    if codings:
        return _transfer_framing(head, persistent and not lengths)
    if lengths:
        return Framing(content_length(lengths), False, persistent)
    return Framing(None, False, False)


def _transfer_framing(head: Head, persistent: bool) -> Framing:
    codings = head.tokens("transfer-encoding")
    if codings == ["chunked"]:
        return Framing(None, True, persistent)
    if not codings or codings.count("chunked") > 1:
        raise Malformed(f"Transfer-Encoding {', '.join(head.every('transfer-encoding'))!r}")
    raise UnsupportedCoding(f"Transfer-Encoding {', '.join(codings)}")


def content_length(values: list[str]) -> int:
    """The one length that every Content-Length value gives; refuses any disagreement."""
    lengths = set()
    for value in values:
        for part in value.split(","):
            digits = part.strip(" \t").encode("latin-1")
            if _DIGITS.fullmatch(digits) is None:
                raise Malformed(f"Content-Length {_shown(digits)} is not a number of bytes")
            lengths.add(int(digits))
    if len(lengths) != 1:
        raise Malformed(f"conflicting Content-Length values {sorted(lengths)}")
    return lengths.pop()


class Body:
    """Reads a body as ``framing`` says; ``done`` once its end, trailers included, was read."""

    def __init__(self, reader: Reader, framing: Framing, limits: Limits = DEFAULT_LIMITS):
        self._reader, self._limits = reader, limits
        self.chunked = framing.chunked
        self.length = framing.length
        self._left = framing.length  # of the body, or of the current chunk
        self.done = framing.length == 0
        reader.phase = "body"

    def read1(self, size: int) -> bytes:
        """Up to ``size`` bytes of the body as they arrive; b"" at its end."""
        if self.done:
            return b""
        if self.chunked:
            return self._chunk_block(size)
        left = self._left
        block = self._reader.take(size if left is None else min(size, left))
        if left is None:
            self.done = not block
        elif not block:
            raise Incomplete(f"the body ended {left} bytes before its Content-Length")
        else:
            self._left = left - len(block)
            self.done = self._left == 0
        return block

    def _chunk_block(self, size: int) -> bytes:
        reader = self._reader
        if not self._left:
            self._left = self._chunk_size()
            if self._left == 0:
                self._trailers()
                return b""
        block = reader.take(min(size, self._left))
        if not block:
            raise Incomplete("the connection closed before the last chunk")
        self._left -= len(block)
        if self._left == 0:
            self._chunk_end()
        return block

    def _chunk_end(self) -> None:
        reader = self._reader
        reader.phase = "end of a chunk"
        try:
            end = reader.line(2)
        except OverLimit:
            end = b"?"
        if end:
            raise Malformed("a chunk's data does not end where its size line says")
        reader.phase = "body"

    def _chunk_size(self) -> int:
        reader = self._reader
        reader.phase = "chunk-size line"
        line = reader.line(self._limits.chunk_line_bytes)
        digits = line.split(b";", 1)[0].strip(b" \t")
        if _HEX.fullmatch(digits) is None:
            raise Malformed(f"not a chunk size: {_shown(line)}")
        reader.phase = "body"
        return int(digits, 16)

    def _trailers(self) -> None:
        """Trailer lines up to the empty one, bounded in lines and bytes; they are not used."""
        reader, limits = self._reader, self._limits
        reader.phase = "trailers"
        budget = limits.head_bytes
        for _ in range(limits.trailer_lines + 1):
            line = reader.line(budget)
            if not line:
                self.done = True
                return
            budget -= len(line) + 2
        raise OverLimit(f"more than {limits.trailer_lines} trailer lines")
