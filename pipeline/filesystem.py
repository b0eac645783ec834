"""File access through Beam's filesystems, so local paths, gs:// and s3:// all work.

Writes are atomic: bytes go to a temporary name beside the target and are
renamed into place, so a retried or killed worker never leaves half a file
under a final name.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from typing import IO, Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

TEMP_MARK = ".tmp-"


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def makedirs(path: str) -> None:
    """Create a folder where the filesystem has folders (object stores do not)."""
    try:
        FileSystems.mkdirs(path)
    except OSError:
        pass  # already there, or a bucket where prefixes need no creation


class _GzipReader(gzip.GzipFile):
    """A gzip stream that also closes the file under it.

    Beam's own decompressing wrapper lacks parts of the io interface that
    ``io.TextIOWrapper`` and pyarrow need, so gzip is undone here instead.
    """

    def __init__(self, raw: IO[bytes]):
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def open_read(path: str, gzipped: bool = False) -> IO[bytes]:
    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    return _GzipReader(raw) if gzipped else raw


def match(pattern: str) -> list[str]:
    """Paths matching a glob, sorted; an empty list when nothing matches."""
    try:
        results = FileSystems.match([pattern])
    except Exception:  # noqa: BLE001 - BeamIOError when nothing matches on some filesystems
        return []
    return sorted(meta.path for result in results for meta in result.metadata_list)


@contextmanager
def atomic_writer(path: str):
    """Yield a stream; on success it is renamed to ``path``, on failure deleted."""
    temp = f"{path}{TEMP_MARK}{uuid.uuid4().hex[:12]}"
    stream = FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED)
    try:
        yield stream
        stream.close()
    except BaseException:
        stream.close()
        FileSystems.delete([temp])
        raise
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temp], [path])


def write_atomically(path: str, write: Callable[[IO[bytes]], Any]) -> Any:
    with atomic_writer(path) as stream:
        return write(stream)


def write_bytes(path: str, data: bytes) -> None:
    write_atomically(path, lambda stream: stream.write(data))


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
        return stream.read()


def delete_temporaries(folder: str) -> int:
    """Remove temporaries left by killed workers; run only when all writers are done."""
    leftovers = [p for p in match(join(folder, "*")) if TEMP_MARK in p.rsplit("/", 1)[-1]]
    if leftovers:
        FileSystems.delete(leftovers)
    return len(leftovers)
