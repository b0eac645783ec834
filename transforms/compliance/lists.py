"""Removal lists: which URLs, domains and images must not be in the dataset.

A list is a file named by ``--exclude [KIND[/DISTANCE]:]PATH``. KIND is the
kind of every entry in the file:

- ``url``: a URL, matched after the normalisation URL dedup uses (scheme and
  host lowercased, default port and fragment dropped);
- ``domain``: a host name; it covers the host and every subdomain of it
  (``example.com`` covers ``img.example.com``, not ``badexample.com``);
- ``sha256``, ``md5``, ``sha1``: 64, 32 or 40 hex digits, a digest of the
  image's bytes as downloaded (the ledger's columns of the same names), as the
  hash lists of child-safety organisations give them;
- ``phash``: 16 hex digits, a 64-bit pHash (the ledger's ``phash``); an image
  whose pHash differs in at most DISTANCE bits matches (``phash/6:FILE``;
  DISTANCE 0 when not given);
- ``pdq``: 64 hex digits, a 256-bit PDQ hash (Meta's perceptual hash, in the
  hex form its hashers print); an image whose PDQ differs in at most DISTANCE
  bits matches (DISTANCE 31 when not given: PDQ's recommended match threshold).

``KIND_RULES`` is the one table of kinds: what a value looks like and which
distances it takes. Everything that reads lists (the job, ``paircurate
remove``, checks before submission) goes through ``read_entries``.

Without a KIND, the file says it per line or in its header:

- text or CSV: ``kind,value[,distance]`` per line (a first line
  ``kind,value[,distance]`` is a header and skipped), or a first line that is
  just a kind name (``sha256``), which then holds for every line below it;
- Parquet: columns ``kind`` and ``value`` (and optionally ``distance``), or a
  single column named for a kind.

Blank lines and lines starting with ``#`` are skipped. A line that does not
parse stops the job with an error naming the file and the line: a takedown
list that is only partly applied is worse than none.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import pyarrow.parquet as pq

from paircurate.transforms.ingest.urls import normalize_url, url_problem

_HEX = re.compile("[0-9a-f]+")


@dataclass(frozen=True)
class KindRule:
    """What the values of one kind look like: ``hex_digits`` for a hash (0: not a hash), and
    for a perceptual hash the largest and the default Hamming distance."""

    hex_digits: int = 0
    before_download: bool = False
    max_distance: int | None = None
    default_distance: int = 0
    label: str = ""

    @property
    def takes_distance(self) -> bool:
        return self.max_distance is not None


KIND_RULES: dict[str, KindRule] = {
    "url": KindRule(before_download=True),
    "domain": KindRule(before_download=True),
    "sha256": KindRule(hex_digits=64),
    "md5": KindRule(hex_digits=32),
    "sha1": KindRule(hex_digits=40),
    "phash": KindRule(hex_digits=16, max_distance=63, label="pHash"),
    "pdq": KindRule(hex_digits=64, max_distance=255, default_distance=31, label="PDQ"),
}
KINDS = tuple(KIND_RULES)
BEFORE_DOWNLOAD = tuple(kind for kind, rule in KIND_RULES.items() if rule.before_download)
"""Kinds that act on the URL, so that a listed row is never fetched."""
PERCEPTUAL = tuple(kind for kind, rule in KIND_RULES.items() if rule.takes_distance)
"""Kinds matched within a Hamming distance."""
EXACT_DIGESTS = tuple(
    kind for kind, rule in KIND_RULES.items() if rule.hex_digits and not rule.takes_distance
)
"""Kinds matched by a digest of the downloaded bytes, one ledger column each."""


class ExclusionListError(ValueError):
    """A removal list that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class ListSpec:
    """One ``--exclude`` value: the file, and the kind and distance its entries get."""

    path: str
    kind: str | None = None
    distance: int | None = None
    """The distance of every perceptual entry without one of its own; None: each kind's
    default."""

    @classmethod
    def parse(cls, spec: str) -> ListSpec:
        """``[KIND[/DISTANCE]:]PATH``; a prefix that is not a kind is part of the path (gs://)."""
        head, sep, rest = spec.partition(":")
        kind, _, distance = head.partition("/")
        if not sep or kind not in KINDS:
            return cls(path=spec)
        if distance and not KIND_RULES[kind].takes_distance:
            raise ExclusionListError(
                f"--exclude {spec!r}: only {' and '.join(PERCEPTUAL)} entries take a /DISTANCE"
            )
        if not rest:
            raise ExclusionListError(f"--exclude {spec!r}: name the file after {head}:")
        given = parse_distance(distance, kind, spec) if distance else None
        return cls(path=rest, kind=kind, distance=given)


@dataclass(frozen=True)
class Entry:
    """One normalised entry: ``kind``, its ``value`` as matched, the ``line`` it came from."""

    kind: str
    value: str
    line: int
    distance: int = 0


def parse_distance(text: str, kind: str, where: str) -> int:
    """A perceptual kind's distance, or ExclusionListError naming its range."""
    rule = KIND_RULES.get(kind)
    if rule is None:
        raise ExclusionListError(f"{where}: unknown kind {kind!r}; use one of {KINDS}")
    if not rule.takes_distance:
        takers = " and ".join(PERCEPTUAL)
        raise ExclusionListError(f"{where}: only {takers} entries take a distance")
    try:
        distance = int(text)
    except ValueError:
        distance = -1
    if not 0 <= distance <= rule.max_distance:
        raise ExclusionListError(
            f"{where}: the {rule.label or kind} distance must be 0..{rule.max_distance}, "
            f"not {text!r}"
        )
    return distance


def host_of(url: str) -> str:
    """The lowercased host of a URL, without a trailing dot."""
    return normalize_url(url).split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].rstrip(".")


def domain_suffixes(host: str) -> list[str]:
    """The host and every parent domain of it: the keys a domain entry can match.

    Hosts are compared without a port; an IP literal is only itself.
    """
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    host = host.rstrip(".")
    if host.startswith("[") or host.replace(".", "").isdigit():
        return [host]
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def normalize_entry(kind: str, value: str, line: int, distance: int | None, where: str) -> Entry:
    """The entry as it is matched, or ExclusionListError saying what is wrong with it.

    ``distance`` None gives a perceptual entry its kind's default distance.
    """
    value = value.strip()
    rule = KIND_RULES.get(kind)
    if rule is None:
        raise ExclusionListError(f"{where}: unknown kind {kind!r}; use one of {KINDS}")
    if kind == "url":
        problem = url_problem(value)
        if problem is not None:
            raise ExclusionListError(f"{where}: {value!r} is not an http(s) URL ({problem[1]})")
        return Entry(kind, normalize_url(value), line)
    if kind == "domain":
        host = value.lower().removeprefix("*.").strip(".")
        if "://" in host:
            host = host_of(host)
        if not host or any(ch in host for ch in "/ ?#@"):
            raise ExclusionListError(f"{where}: {value!r} is not a domain name")
        return Entry(kind, host, line)
    text = value.lower().removeprefix("0x")
    if len(text) != rule.hex_digits or not _HEX.fullmatch(text):
        raise ExclusionListError(
            f"{where}: a {kind} entry is {rule.hex_digits} hex digits, not {value!r}"
        )
    if not rule.takes_distance:
        return Entry(kind, text, line)
    return Entry(kind, text, line, rule.default_distance if distance is None else distance)


def _text_entries(stream: IO[bytes], spec: ListSpec) -> Iterator[Entry]:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    kind = spec.kind
    for number, fields in enumerate(csv.reader(text), start=1):
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        where = f"{spec.path} line {number}"
        first = fields[0].strip().lower()
        if number == 1 and kind is None:
            if first == "kind":
                continue  # kind,value[,distance] header
            if len(fields) == 1 and first in KINDS:
                kind = first  # the file's kind, as a one-column CSV header
                continue
        if kind is not None:
            if number == 1 and len(fields) == 1 and first in (kind, "value"):
                continue  # a header naming the column
            yield normalize_entry(kind, fields[0], number, spec.distance, where)
            continue
        if len(fields) < 2:
            raise ExclusionListError(
                f"{where}: give kind,value (or name the kind: --exclude sha256:{spec.path})"
            )
        distance = (
            parse_distance(fields[2], first, where)
            if len(fields) > 2 and fields[2].strip()
            else spec.distance
        )
        yield normalize_entry(first, fields[1], number, distance, where)


def _parquet_entries(stream: IO[bytes], spec: ListSpec) -> Iterator[Entry]:
    parquet = pq.ParquetFile(stream)
    names = parquet.schema_arrow.names
    if spec.kind is not None:
        column = "value" if "value" in names else spec.kind if spec.kind in names else None
        if column is None and len(names) == 1:
            column = names[0]
    elif {"kind", "value"} <= set(names):
        column = None
    elif len(names) == 1 and names[0] in KINDS:
        column = names[0]
    else:
        raise ExclusionListError(
            f"{spec.path}: a Parquet list has columns kind and value (and distance), or one "
            f"column named for a kind ({', '.join(KINDS)}); it has {names}"
        )
    if column is not None and column not in names:
        raise ExclusionListError(f"{spec.path}: no column value or {spec.kind}; it has {names}")
    kind = spec.kind or column
    wanted = [column] if column else [n for n in ("kind", "value", "distance") if n in names]
    number = 0
    for batch in parquet.iter_batches(batch_size=65536, columns=wanted):
        columns = batch.to_pydict()
        for i in range(batch.num_rows):
            number += 1
            where = f"{spec.path} row {number}"
            if column is not None:
                value = columns[column][i]
                if value is None:
                    raise ExclusionListError(f"{where}: the value is empty")
                yield normalize_entry(kind, str(value), number, spec.distance, where)
                continue
            entry_kind, value = columns["kind"][i], columns["value"][i]
            if entry_kind is None or value is None:
                raise ExclusionListError(f"{where}: kind and value must not be empty")
            entry_kind = str(entry_kind).lower()
            distance = columns.get("distance", [None] * batch.num_rows)[i]
            if distance is None:
                distance = spec.distance
            else:
                distance = parse_distance(str(distance), entry_kind, where)
            yield normalize_entry(entry_kind, str(value), number, distance, where)


def read_entries(stream: IO[bytes], spec: ListSpec) -> Iterator[Entry]:
    """Every entry of one list, normalised, in file order (``line`` counts from 1)."""
    if spec.path.lower().endswith((".parquet", ".pq")):
        yield from _parquet_entries(stream, spec)
    else:
        yield from _text_entries(stream, spec)


def describe_entry(entry_kind: str, path: str, line: int) -> str:
    """Where an entry is, for reason_detail and the ledger's ``compliance_match``."""
    return f"{path}:{line} ({entry_kind})"
