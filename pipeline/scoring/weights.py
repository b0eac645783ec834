"""Model weights where the workers are: a checkpoint on any filesystem, copied once per machine.

``--clip-checkpoint`` may name a file on any filesystem Beam knows (``gs://``,
``s3://``, a local path). open_clip reads only local files, so a worker copies a
remote checkpoint into its machine's cache first and loads it from there. The
cache entry is keyed by the path and the file's size and modification time (a
replaced file gets a new entry), and it is written under a temporary name and
renamed into place, under a lock file, so that the worker processes of one
machine copy it once and never read half a file.

The cache folder is ``$PAIRCURATE_CACHE/checkpoints``, else
``$XDG_CACHE_HOME/paircurate/checkpoints``, else ``~/.cache/paircurate/checkpoints``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from pathlib import Path

from apache_beam.io.filesystems import FileSystems
from filelock import FileLock

from paircurate.pipeline import filesystem as fs

log = logging.getLogger(__name__)

COPY_BUFFER = 16 << 20


def is_local_path(path: str) -> bool:
    """Whether ``path`` is on this machine's disk rather than in a store Beam reaches."""
    return FileSystems.get_scheme(path) in (None, "file")


def cache_folder() -> Path:
    if os.environ.get("PAIRCURATE_CACHE"):
        return Path(os.environ["PAIRCURATE_CACHE"]) / "checkpoints"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "paircurate" / "checkpoints"


def local_checkpoint(path: str, cache: Path | None = None) -> str:
    """A local file with the contents of ``path``: itself if local, else a cached copy."""
    if is_local_path(path):
        return path
    size, updated = _size_and_time(path)
    key = hashlib.sha256(f"{path}\0{size}\0{updated}".encode()).hexdigest()[:24]
    folder = (cache or cache_folder()) / key
    target = folder / (path.rstrip("/").rsplit("/", 1)[-1] or "checkpoint.pt")
    if _complete(target, size):
        return str(target)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".lock")):
        if not _complete(target, size):  # another process may have copied it meanwhile
            _copy(path, target, size)
    return str(target)


def _size_and_time(path: str) -> tuple[int, float]:
    try:
        metadata = FileSystems.match([path])[0].metadata_list
    except Exception as error:  # noqa: BLE001 - BeamIOError and the stores' own errors
        raise FileNotFoundError(f"--clip-checkpoint {path}: cannot be read ({error})") from error
    if not metadata:
        raise FileNotFoundError(f"--clip-checkpoint {path}: no such file")
    return metadata[0].size_in_bytes, getattr(metadata[0], "last_updated_in_seconds", 0.0)


def _complete(target: Path, size: int) -> bool:
    return target.is_file() and target.stat().st_size == size


def _copy(path: str, target: Path, size: int) -> None:
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with fs.open_read(path) as source, open(temporary, "wb") as sink:
            shutil.copyfileobj(source, sink, COPY_BUFFER)
        copied = temporary.stat().st_size
        if copied != size:
            raise OSError(f"--clip-checkpoint {path}: copied {copied} of {size} bytes")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    log.info("copied the checkpoint %s (%d bytes) to %s", path, size, target)
