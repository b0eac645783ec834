"""The filesystem interface everything on disk goes through, and the writes built on it.

``Files`` is the small set of operations the outputs need. The job's
implementation is Beam's filesystems (``pipeline.filesystem.BeamFiles``), so a
local folder, ``gs://`` and ``s3://`` work alike, with the credentials Beam's
pipeline options carry. This module imports no Beam: the stores and layouts
built on it (``transforms.output.store``) and the report take a ``Files``.

Writes are atomic: bytes go to a temporary name beside the target and are
moved into place with ``replace``, which never deletes the target first.
``arrow_filesystem`` wraps a ``Files`` as a pyarrow filesystem, for readers
such as Arrow datasets that want one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, NamedTuple, Protocol

import pyarrow as pa
import pyarrow.fs as pafs

TEMP_MARK = ".tmp-"
ASIDE_MARK = ".aside-"


class FileInfo(NamedTuple):
    path: str
    size: int


class Files(Protocol):
    """What the outputs need of a filesystem; paths are local paths or URIs (gs://, s3://)."""

    def join(self, base: str, *parts: str) -> str: ...

    def exists(self, path: str) -> bool: ...

    def open_read(self, path: str) -> IO[bytes]:
        """A seekable binary stream of the file's bytes."""
        ...

    def create(self, path: str) -> IO[bytes]:
        """A binary stream that becomes the file at ``path`` when closed."""
        ...

    def rename(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``; where ``target`` exists, replace it or raise OSError."""
        ...

    def delete(self, paths: list[str]) -> None: ...

    def match(self, pattern: str) -> list[FileInfo]:
        """Files matching a glob (``*`` stays within a folder, ``**`` does not), sorted by path.

        An empty list when nothing matches.
        """
        ...

    def makedirs(self, path: str) -> None:
        """Create a folder where the filesystem has folders; object stores need none."""
        ...


def temporary_name(path: str) -> str:
    return f"{path}{TEMP_MARK}{uuid.uuid4().hex[:12]}"


def replace(files: Files, source: str, target: str) -> None:
    """Move ``source`` onto ``target`` without ever deleting ``target`` first.

    A rename replaces the target atomically on POSIX folders, and an object
    store's copy replaces the object atomically. Where a filesystem refuses to
    rename onto an existing file, the old file is moved aside, the new one in,
    and only then the old one is deleted (or moved back if the second move fails).
    """
    try:
        files.rename(source, target)
        return
    except OSError:
        if not files.exists(target):
            raise
    aside = f"{target}{ASIDE_MARK}{uuid.uuid4().hex[:12]}"
    files.rename(target, aside)
    try:
        files.rename(source, target)
    except BaseException:
        files.rename(aside, target)
        raise
    files.delete([aside])


@contextmanager
def atomic_writer(files: Files, path: str) -> Iterator[IO[bytes]]:
    """Yield a stream; on success it replaces ``path``, on failure it is deleted."""
    temp = temporary_name(path)
    stream = files.create(temp)
    try:
        yield stream
        stream.close()
    except BaseException:
        stream.close()
        files.delete([temp])
        raise
    replace(files, temp, path)


def write_atomically(files: Files, path: str, write: Callable[[IO[bytes]], Any]) -> Any:
    with atomic_writer(files, path) as stream:
        return write(stream)


def write_bytes(files: Files, path: str, data: bytes) -> None:
    write_atomically(files, path, lambda stream: stream.write(data))


def read_bytes(files: Files, path: str) -> bytes:
    with files.open_read(path) as stream:
        return stream.read()


def delete_temporaries(files: Files, folder: str) -> int:
    """Remove temporaries left by killed workers; run only when all writers are done."""
    leftovers = [
        info.path
        for info in files.match(files.join(folder, "*"))
        if TEMP_MARK in info.path.rsplit("/", 1)[-1] or ASIDE_MARK in info.path.rsplit("/", 1)[-1]
    ]
    if leftovers:
        files.delete(leftovers)
    return len(leftovers)


class FilesHandler(pafs.FileSystemHandler):
    """A ``Files`` as a pyarrow filesystem handler (read side), for ``arrow_filesystem``.

    Folders are what paths below them imply, as on an object store.
    """

    def __init__(self, files: Files):
        self.files = files

    def __eq__(self, other) -> bool:
        return isinstance(other, FilesHandler) and other.files is self.files

    def __ne__(self, other) -> bool:
        return not self == other

    def get_type_name(self) -> str:
        return "paircurate"

    def normalize_path(self, path: str) -> str:
        return path

    def _below(self, folder: str) -> list[FileInfo]:
        return self.files.match(folder.rstrip("/") + "/**")

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        infos = []
        for path in paths:
            if self._below(path):
                infos.append(pafs.FileInfo(path, pafs.FileType.Directory))
                continue
            found = self.files.match(path) if self.files.exists(path) else []
            if found:
                infos.append(pafs.FileInfo(path, pafs.FileType.File, size=found[0].size))
            else:
                infos.append(pafs.FileInfo(path, pafs.FileType.NotFound))
        return infos

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        base = selector.base_dir.rstrip("/")
        below = self._below(base)
        if not below and not selector.allow_not_found and not self.files.exists(base):
            raise FileNotFoundError(base)
        infos: dict[str, pafs.FileInfo] = {}
        for info in below:
            parts = info.path[len(base) + 1 :].split("/")
            depth = len(parts) if selector.recursive else 1
            for level in range(1, min(depth, len(parts) - 1) + 1):
                folder = "/".join([base, *parts[:level]])
                infos.setdefault(folder, pafs.FileInfo(folder, pafs.FileType.Directory))
            if selector.recursive or len(parts) == 1:
                infos[info.path] = pafs.FileInfo(info.path, pafs.FileType.File, size=info.size)
        return sorted(infos.values(), key=lambda info: info.path)

    def open_input_file(self, path: str):
        return pa.PythonFile(self.files.open_read(path), mode="r")

    def open_input_stream(self, path: str):
        return pa.PythonFile(self.files.open_read(path), mode="r")

    def _read_only(self, *args) -> None:
        raise OSError("this filesystem view is read-only; write through Files")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only


def arrow_filesystem(files: Files) -> pafs.FileSystem:
    """``files`` as a read-only pyarrow filesystem over the same paths and URIs."""
    return pafs.PyFileSystem(FilesHandler(files))
