"""What the compliance step decides for a row, once a join found what it matches.

The sources of a run are its ``--exclude`` lists, then its ``--decontaminate``
sets, numbered in that order; a row that matches several is recorded with the
first source, its first line, the nearest image.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from paircurate.schemas.codes import REASONS
from paircurate.schemas.config import ComplianceConfig
from paircurate.schemas.records import DECIDED
from paircurate.transforms.compliance.join import EVAL_KIND, KINDS, PROBE, exact_key, uid_bytes
from paircurate.transforms.compliance.lists import (
    BEFORE_DOWNLOAD,
    KIND_RULES,
    ListSpec,
    domain_suffixes,
    host_of,
)
from paircurate.transforms.ingest.urls import normalize_url, url_problem
from paircurate.transforms.output.ledger import drop

COMPLIANCE_REASONS = frozenset(code for code, r in REASONS.items() if r.stage == "compliance")


@dataclass(frozen=True)
class Sources:
    """The lists and evaluation sets of a run, by source number."""

    lists: tuple[ListSpec, ...]
    evalsets: tuple[str, ...]
    eval_distance: int

    @classmethod
    def of(cls, config: ComplianceConfig) -> Sources:
        lists = tuple(ListSpec.parse(spec) for spec in config.exclude)
        return cls(lists, tuple(config.decontaminate), config.decontam_phash_distance)

    @property
    def active(self) -> bool:
        return bool(self.lists or self.evalsets)

    @property
    def may_list_urls(self) -> bool:
        """Whether a list may hold url or domain entries (its kind is not a hash kind)."""
        return any(spec.kind in (None, *BEFORE_DOWNLOAD) for spec in self.lists)

    def eval_source(self, index: int) -> int:
        return len(self.lists) + index

    def path(self, source: int) -> str:
        if source < len(self.lists):
            return self.lists[source].path
        return self.evalsets[source - len(self.lists)]


def url_keys(url: str) -> list[bytes]:
    """The join keys a URL is looked up by: its own, and its host's and parent domains'."""
    if url_problem(url) is not None:
        return []
    keys = [exact_key("url", normalize_url(url))]
    keys += [exact_key("domain", suffix) for suffix in domain_suffixes(host_of(url))]
    return keys


def url_probes(row: Mapping[str, Any]) -> np.ndarray:
    keys = url_keys(row["url"])
    probes = np.zeros(len(keys), dtype=PROBE)
    probes["key"] = keys
    probes["ref"] = uid_bytes(row["uid"])
    return probes


def describe_match(
    match: tuple[int, int, int, int, int], sources: Sources, eval_names: Mapping[str, str]
) -> tuple[str, str, str]:
    """(reason, reason_detail, compliance_match) of a row's first match."""
    source, item, distance, kind, _ = match
    path = sources.path(source)
    if kind == EVAL_KIND:
        name = eval_names.get(f"{source}:{item}", f"image {item}")
        detail = f"pHash within {distance} bits of evaluation image {name} of {path}"
        return "eval_contamination", detail, name
    detail, where = list_match_detail(KINDS[kind], path, item, distance)
    return "excluded", detail, where


def list_match_detail(kind: str, path: str, line: int, distance: int) -> tuple[str, str]:
    """(reason_detail, compliance_match) of a row a list entry matched."""
    rule = KIND_RULES[kind]
    if rule.takes_distance:
        detail = f"{rule.label} within {distance} bits of the {kind} entry at line {line} of {path}"
    else:
        detail = f"{kind} entry at line {line} of {path}"
    return detail, f"{path}:{line}"


def dropped_row(
    row: Mapping[str, Any], match: tuple, sources: Sources, eval_names: Mapping[str, str]
) -> dict:
    """A row dropped before download for its URL's match."""
    reason, detail, where = describe_match(match, sources, eval_names)
    return drop(row, reason, detail, compliance_match=where)


def decision(
    uid: str, match: tuple, sources: Sources, eval_names: Mapping[str, str]
) -> dict[str, Any]:
    """The Decide-step record of a fetched row that matched (Write merges it by uid)."""
    reason, detail, where = describe_match(match, sources, eval_names)
    record = dict.fromkeys(DECIDED)
    record.update(reason=reason, reason_detail=detail, compliance_match=where)
    return {**record, "uid": uid, "chunk": match[4], "rank": (0, match[0], match[1])}


def cosine_decision(
    uid: str, chunk: int, eval_key: str, similarity: float, sources: Sources, names: Mapping
) -> dict[str, Any]:
    """The decision of a pool image whose CLIP embedding is near evaluation image ``eval_key``."""
    source, item = (int(part) for part in eval_key.split(":"))
    name = names.get(eval_key, f"image {item}")
    detail = (
        f"CLIP image cosine {similarity:.4f} with evaluation image {name} of {sources.path(source)}"
    )
    record = dict.fromkeys(DECIDED)
    record.update(reason="eval_contamination", reason_detail=detail, compliance_match=name)
    return {**record, "uid": uid, "chunk": chunk, "rank": (1, source, item)}


def _rank(record: Mapping[str, Any]) -> tuple:
    """Compliance decisions first, pHash and list matches before embedding ones."""
    if record.get("reason") not in COMPLIANCE_REASONS:
        return (1,)
    return (0, *record.get("rank", (0,)))


def decisions_by_uid(decisions: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """One decision per uid: a compliance decision overrides a duplicate-cluster one."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for record in decisions:
        current = chosen.get(record["uid"])
        if current is None or _rank(record) < _rank(current):
            chosen[record["uid"]] = record
    return chosen
