"""Which crawl files a job reads: globs, folders, or paths lists with a prefix.

Planned on the launching machine, before anything runs: a glob that
matches nothing or an empty paths list stops the job in seconds. A paths
list (Common Crawl's ``wat.paths.gz``: one path per line, relative to the
bucket) is read whole; its relative entries get ``--crawl-prefix``, or,
without one, the list's own folder. The entries are not looked up one by
one (a snapshot lists 100,000 files): a missing file becomes one failed row
of the extract ledger when it is read.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import pyarrow as pa

from paircurate.pipeline import filesystem as fs
from paircurate.schemas.config import ExtractConfig, InputConfig
from paircurate.schemas.extract import PROVENANCE_FIELDS, PROVENANCE_NAMES
from paircurate.transforms.ingest.inputs import InputError

# Name endings by format, longest first: a WAT file is also named .warc.wat.gz.
SUFFIXES = (
    ("wat", (".warc.wat.gz", ".wat.gz", ".wat")),
    ("warc", (".warc.gz", ".warc")),
)
PATHS_SUFFIXES = ((".paths.gz", True), (".paths", False))
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class CrawlPlan:
    """The crawl files to read, in a stable order, and their format (wat or warc)."""

    files: tuple[str, ...]
    fmt: str
    carried: tuple[pa.Field, ...] = PROVENANCE_FIELDS


def format_of_name(path: str) -> str | None:
    """wat or warc by a crawl file's or paths list's name; None for any other name."""
    name = path.lower().rstrip("/").rsplit("/", 1)[-1]
    for suffix, _ in PATHS_SUFFIXES:
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem if stem in ("wat", "warc") else None
    for fmt, endings in SUFFIXES:
        if name.endswith(endings):
            return fmt
    return None


def crawl_format(inputs: InputConfig, extract: ExtractConfig) -> str | None:
    """wat or warc when the job reads a crawl, None when it reads URL + caption lists."""
    if extract.input_format in ("wat", "warc"):
        return extract.input_format
    if extract.input_format == "lists":
        return None
    found = {format_of_name(pattern) for pattern in inputs.input}
    if len(found) == 1 and None not in found:
        return found.pop()
    if found - {None}:
        raise InputError(
            f"--input {list(inputs.input)}: some inputs are named as crawl files and some are "
            "not; name the format with --input-format wat, warc or lists"
        )
    return None


def is_paths_list(path: str) -> bool:
    return path.lower().endswith((".paths", ".paths.gz"))


def read_paths_list(path: str, prefix: str) -> list[str]:
    """The crawl files a paths list names, each relative entry with ``prefix`` (or its folder)."""
    with fs.open_read(path) as stream:
        data = stream.read()
    if path.lower().endswith(".gz"):
        data = gzip.decompress(data)
    base = prefix or path.rsplit("/", 1)[0] + "/"
    files = []
    for line in data.decode("utf-8").splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        absolute = "://" in entry or entry.startswith("/")
        files.append(entry if absolute else base.rstrip("/") + "/" + entry.lstrip("/"))
    return files


def _expand(pattern: str, fmt: str, prefix: str) -> list[str]:
    if is_paths_list(pattern) and not _GLOB_CHARS & set(pattern):
        if not fs.exists(pattern):
            raise InputError(f"--input {pattern!r}: the paths list does not exist")
        return read_paths_list(pattern, prefix)
    if _GLOB_CHARS & set(pattern):
        return fs.match(pattern)
    below = fs.match(pattern.rstrip("/") + "/**")
    if below:  # a folder: the crawl files below it
        return [p for p in below if format_of_name(p) == fmt and not is_paths_list(p)]
    return [pattern] if fs.exists(pattern) else []


def plan_crawl(inputs: InputConfig, extract: ExtractConfig) -> CrawlPlan | None:
    """The crawl files of the job, or None when its inputs are URL + caption lists."""
    fmt = crawl_format(inputs, extract)
    if fmt is None:
        return None
    if inputs.keep_cols:
        raise InputError(
            "--keep-cols: a crawl input carries its provenance columns "
            f"({', '.join(PROVENANCE_NAMES)}) and no others; leave --keep-cols out"
        )
    files: dict[str, None] = {}  # an ordered set: a file named twice is read once
    for pattern in inputs.input:
        found = _expand(pattern, fmt, extract.crawl_prefix)
        if not found:
            raise InputError(f"--input {pattern!r}: no {fmt.upper()} files found")
        files.update(dict.fromkeys(found))
    planned = list(files)
    if extract.crawl_max_files:
        planned = planned[: extract.crawl_max_files]
    return CrawlPlan(tuple(planned), fmt)
