"""Content-Encoding of a response body: decoded under the byte cap, or refused by name.

We ask for ``Accept-Encoding: identity``, but servers send what they like.
``gzip`` (and ``x-gzip``) and ``deflate`` (with or without its zlib header)
are decoded, also stacked (``gzip, gzip``: the last one listed is undone
first), up to ``MAX_LAYERS``; each layer may produce at most ``cap`` bytes, so
a compression bomb is refused after ``cap`` bytes, not inflated. A stream that
stops before its end is incomplete, as a body cut short is. Anything else
(``br``, ``zstd``, ``compress``, names nobody registered) is refused with a
reason that names it.
"""

from __future__ import annotations

import zlib

MAX_LAYERS = 3
_GZIP, _ZLIB, _RAW_DEFLATE = 31, 15, -15
_DECODED = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": _ZLIB}


class CodingError(Exception):
    """``reason`` is the ledger's reason code; the message is its detail."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class _Layer:
    """One coding undone, never producing more than ``cap`` bytes in all."""

    def __init__(self, name: str, cap: int):
        self.name, self.cap = name, cap
        self._inflate = zlib.decompressobj(_DECODED[name])
        self._started = False
        self.produced = 0

    def feed(self, data: bytes) -> bytes:
        room = self.cap + 1 - self.produced  # >= 1: zlib reads 0 as "no limit"
        try:
            out = self._inflate.decompress(data, room)
        except zlib.error as error:
            if self._started or self.name != "deflate":
                raise CodingError("download_error", f"bad {self.name} body: {error}") from None
            self._inflate = zlib.decompressobj(_RAW_DEFLATE)  # deflate without the zlib header
            out = self._inflate.decompress(data, room)
        self._started = True
        self.produced += len(out)
        if self.produced > self.cap:
            raise CodingError("download_too_large", f"body exceeds {self.cap} bytes")
        return out

    def check_whole(self) -> None:
        if not self._inflate.eof:
            detail = f"the {self.name} stream ends before its end ({self.produced} bytes decoded)"
            raise CodingError("download_incomplete", detail)


class ContentDecoder:
    """Undoes a response's content codings, block by block."""

    def __init__(self, names: list[str], cap: int):
        self._layers = [_Layer(name, cap) for name in reversed(names)]

    def feed(self, data: bytes) -> bytes:
        for layer in self._layers:
            data = layer.feed(data)
        return data

    def finish(self) -> None:
        """Raises ``download_incomplete`` when a stream stopped before its end."""
        for layer in self._layers:
            layer.check_whole()


def content_decoder(values: list[str], cap: int) -> ContentDecoder | None:
    """The decoder for the Content-Encoding values; None for identity; refuses the rest."""
    names = [name.strip().lower() for value in values for name in value.split(",")]
    names = [name for name in names if name and name != "identity"]
    if not names:
        return None
    unknown = [name for name in names if name not in _DECODED]
    if unknown:
        detail = f"Content-Encoding {', '.join(names)}: {', '.join(unknown)} is not decoded here"
        raise CodingError("download_unsupported_encoding", detail)
    if len(names) > MAX_LAYERS:
        detail = f"Content-Encoding {', '.join(names)}: more than {MAX_LAYERS} codings"
        raise CodingError("download_unsupported_encoding", detail)
    return ContentDecoder(names, cap)
