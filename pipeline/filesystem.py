"""The job's ``Files``: Beam's filesystems, so local paths, gs:// and s3:// all work.

Object stores need Beam's pipeline options (``--s3_endpoint_url``,
``--s3_access_key_id``, ... or the standard AWS variables; GCS credentials
from the environment): ``configure`` hands them to Beam's filesystems in the
launching process, before the first input is looked at. Beam's SDK workers
started by Beam's boot set them from the job's options; a worker started
without them (a bare Python worker pool, a subprocess of the local runner)
takes them from ``FILES`` itself, which carries the options given to
``configure`` wherever the job's DoFns are unpickled.

The module-level helpers are the same operations on ``FILES``, for the
wiring that reads inputs and writes small files. Importing the module makes
Beam's S3 filesystem share its boto3 clients (``pipeline.s3_clients``), in the
launcher and in every worker that unpickles ``FILES``.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import IO, Any

from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from paircurate.pipeline.s3_clients import share_s3_clients
from paircurate.transforms.output import storage
from paircurate.transforms.output.storage import FileInfo

share_s3_clients()

# The options given to ``configure``, which ``FILES`` carries to workers.
_GIVEN: dict[str, Any] = {}


def configure(beam_args: list[str]) -> None:
    """Give Beam's filesystems the pipeline options (object-store endpoints and credentials)."""
    options = PipelineOptions(list(beam_args))
    FileSystems.set_options(options)
    _GIVEN.clear()
    _GIVEN.update(options.get_all_options(drop_default=True))


def _files_in_worker(given: dict[str, Any]) -> BeamFiles:
    """``FILES`` where it is unpickled, with the launcher's options if the worker has none."""
    if FileSystems._pipeline_options is None and given:  # noqa: SLF001 - Beam keeps no getter
        FileSystems.set_options(PipelineOptions.from_dictionary(given))
    return FILES


class BeamFiles:
    """``storage.Files`` on Beam's FileSystems."""

    def join(self, base: str, *parts: str) -> str:
        return FileSystems.join(base, *parts)

    def exists(self, path: str) -> bool:
        return FileSystems.exists(path)

    def open_read(self, path: str) -> IO[bytes]:
        return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)

    def create(self, path: str) -> IO[bytes]:
        return FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)

    def rename(self, source: str, target: str) -> None:
        try:
            FileSystems.rename([source], [target])
        except BeamIOError as error:
            raise OSError(f"cannot rename {source} to {target}: {error}") from error

    def delete(self, paths: list[str]) -> None:
        FileSystems.delete(list(paths))

    def match(self, pattern: str) -> list[FileInfo]:
        try:
            results = FileSystems.match([pattern])
        except Exception:  # noqa: BLE001 - BeamIOError when nothing matches on some filesystems
            return []
        found = {meta.path: meta.size_in_bytes for r in results for meta in r.metadata_list}
        return [FileInfo(path, size) for path, size in sorted(found.items())]

    def makedirs(self, path: str) -> None:
        try:
            FileSystems.mkdirs(path)
        except OSError:
            pass  # already there, or a bucket where prefixes need no creation

    def __reduce__(self):
        return (_files_in_worker, (dict(_GIVEN),))


FILES = BeamFiles()


def join(base: str, *parts: str) -> str:
    return FILES.join(base, *parts)


def exists(path: str) -> bool:
    return FILES.exists(path)


def makedirs(path: str) -> None:
    FILES.makedirs(path)


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
    raw = FILES.open_read(path)
    return _GzipReader(raw) if gzipped else raw


def match(pattern: str) -> list[str]:
    """Paths matching a glob, sorted; an empty list when nothing matches."""
    return [info.path for info in FILES.match(pattern)]


def write_atomically(path: str, write: Callable[[IO[bytes]], Any]) -> Any:
    return storage.write_atomically(FILES, path, write)


def write_bytes(path: str, data: bytes) -> None:
    storage.write_bytes(FILES, path, data)


def read_bytes(path: str) -> bytes:
    return storage.read_bytes(FILES, path)
