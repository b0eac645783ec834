"""Evaluation sets to keep out of the pool: their images and the pHashes they are matched by.

``--decontaminate EVAL_SET`` names one of:

- a folder of images (searched recursively: .jpg, .jpeg, .png, .webp, .gif, .bmp);
- WebDataset tar files: one .tar, or a folder holding some (a paircurate run
  folder counts: its shards/ are read);
- Parquet with a ``phash`` column, such as a paircurate run's shard Parquet or
  ledger: the images were downloaded already, so their pHashes are used as they
  are, and ``url`` (or ``key``) names them.

Every image is named (its path, ``TAR:MEMBER`` or URL) and hashed the way Fetch
hashes downloaded images: EXIF orientation applied, then the 64-bit pHash.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow.parquet as pq
from PIL import Image, ImageOps

from paircurate.transforms.crawl.images import picture_phash, to_rgb
from paircurate.transforms.output.storage import Files

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")


class EvalSetError(ValueError):
    """An evaluation set that cannot be read; the message names it."""


@dataclass(frozen=True)
class EvalImage:
    """One image of an evaluation set: where it is, and its pHash (None: not decodable)."""

    name: str
    phash: int | None
    image: bytes | None = None


def decoded_image(data: bytes) -> Image.Image | None:
    """The image upright and in RGB, as Fetch decodes downloads; None when it is no image."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            return to_rgb(ImageOps.exif_transpose(opened))
    except Exception:  # noqa: BLE001 - Pillow raises many types on broken files
        return None


def image_phash(data: bytes) -> int | None:
    """The pHash Fetch would record for these bytes, or None when they are no image."""
    image = decoded_image(data)
    if image is None:
        return None
    return picture_phash(image)


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _tar_images(files: Files, path: str) -> Iterator[EvalImage]:
    with files.open_read(path) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            if member.isfile() and is_image_name(member.name):
                data = tar.extractfile(member).read()
                yield EvalImage(f"{path}:{member.name}", image_phash(data), data)


def _parquet_images(files: Files, path: str) -> Iterator[EvalImage]:
    with files.open_read(path) as stream:
        parquet = pq.ParquetFile(stream)
        names = parquet.schema_arrow.names
        if "phash" not in names:
            raise EvalSetError(f"--decontaminate {path}: Parquet without a phash column")
        label = next((n for n in ("url", "key", "uid") if n in names), None)
        columns = ["phash"] + ([label] if label else [])
        row = 0
        for batch in parquet.iter_batches(columns=columns):
            data = batch.to_pydict()
            for i, value in enumerate(data["phash"]):
                name = data[label][i] if label else f"{path} row {row}"
                row += 1
                yield EvalImage(str(name), _recorded_phash(value, f"{path} row {row}"))


def _recorded_phash(value: object, where: str) -> int | None:
    """A phash column's value (16 hex digits, as the ledger writes it); None when empty."""
    if value is None:
        return None
    try:
        return int(str(value), 16)
    except ValueError:
        raise EvalSetError(
            f"--decontaminate {where}: phash {value!r} is not 16 hex digits"
        ) from None


def eval_files(files: Files, location: str) -> list[str]:
    """The files of an evaluation set, sorted: tars, Parquet or images; raises if none."""
    lowered = location.lower()
    if lowered.endswith((".tar", ".parquet")) or is_image_name(lowered):
        if not files.exists(location):
            raise EvalSetError(f"--decontaminate {location}: no such file")
        return [location]
    base = location.rstrip("/")
    for pattern in ("shards/*.tar", "*.tar", "**"):
        found = [info.path for info in files.match(files.join(base, pattern))]
        if pattern == "**":
            found = [path for path in found if is_image_name(path)]
        if found:
            return sorted(found)
    raise EvalSetError(f"--decontaminate {location}: no images, .tar files or shards/ found there")


def read_eval_file(files: Files, path: str) -> Iterator[EvalImage]:
    """The images of one file of an evaluation set, in file order."""
    lowered = path.lower()
    if lowered.endswith(".tar"):
        yield from _tar_images(files, path)
    elif lowered.endswith(".parquet"):
        yield from _parquet_images(files, path)
    else:
        with files.open_read(path) as stream:
            data = stream.read()
        yield EvalImage(path, image_phash(data), data)
