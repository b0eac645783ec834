"""Images that declare more pixels than they carry: headers that must be refused undecoded.

Each is a few hundred bytes with a small real image inside, its declared size
patched to ``width`` x ``height``; decoding one would allocate the declared
size (about 430 MB to 700 MB at the sizes the tests use).
"""

from __future__ import annotations

import gzip
import struct
import zlib

from PIL import Image

from ..helpers import encoded

# A minimal big-endian TIFF header with no entries: what an eXIf chunk holds.
_EXIF = b"MM\x00*\x00\x00\x00\x08\x00\x00"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_bomb(width: int, height: int, exif: str = "after") -> bytes:
    """A PNG header of ``width`` x ``height`` with a tiny IDAT and an eXIf chunk ``before``
    or ``after`` it (Pillow reads an eXIf chunk after the pixels only by decoding them)."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    pixels = _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    exif_chunk = _png_chunk(b"eXIf", _EXIF)
    middle = exif_chunk + pixels if exif == "before" else pixels + exif_chunk
    return b"\x89PNG\r\n\x1a\n" + header + middle + _png_chunk(b"IEND", b"")


def jpeg_bomb(width: int, height: int) -> bytes:
    """A small JPEG whose start-of-frame says ``width`` x ``height``."""
    data = bytearray(encoded(Image.new("RGB", (16, 16), (200, 30, 30)), "JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_bomb(width: int, height: int) -> bytes:
    """An animated WebP of two 16 x 16 frames on a ``width`` x ``height`` canvas."""
    frames = [Image.new("RGB", (16, 16), color) for color in ((200, 30, 30), (30, 30, 200))]
    data = bytearray(
        encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    )
    assert data[12:16] == b"VP8X", "Pillow wrote a simple WebP"
    data[24:27] = (width - 1).to_bytes(3, "little")
    data[27:30] = (height - 1).to_bytes(3, "little")
    return bytes(data)


def gif_bomb(width: int, height: int) -> bytes:
    """A small GIF whose logical screen is ``width`` x ``height``."""
    data = bytearray(encoded(Image.new("P", (16, 16), 1), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def gzipped(data: bytes, times: int = 1) -> bytes:
    for _ in range(times):
        data = gzip.compress(data)
    return data
