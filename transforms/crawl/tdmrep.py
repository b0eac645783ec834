"""The W3C TDM Reservation Protocol (TDMRep, final report of 2024): who reserves mining rights.

A rights holder reserves text and data mining (the EU's DSM directive, article 4)
in one of these ways; we read the two that reach an image download:

- the response headers ``tdm-reservation: 1`` (``0``: not reserved) and
  ``tdm-policy: <url>`` (where the licence offer is);
- ``/.well-known/tdmrep.json`` on the origin: a JSON array of rules
  ``{"location": pattern, "tdm-reservation": 0|1, "tdm-policy": url}``. A
  location is a path pattern with robots.txt's syntax ('*' any characters, a
  final '$' the end of the path); the rules are read in order and the first
  whose location matches the URL's path applies.

Headers take precedence over the file: a response saying ``tdm-reservation: 0``
frees a resource the file reserves. The HTML ``<meta name="tdm-reservation">``
lives in web pages, which we never fetch (we fetch images), so it is not read.

The file is fetched once per origin through robots.py's OriginCache. A missing
one (4xx) or one that is not a JSON array of rules (a soft-404 HTML page, bad
JSON) reserves nothing; malformed rules inside a good array are skipped. A
server that answers 5xx or 429 keeps its host closed for a while, as with an
unreadable robots.txt (``download_tdmrep_unavailable``). A host that does not
answer at all (refused, timeout, DNS) gives its rows that failure's own reason,
since the image request would meet the same; the file is asked for again after
the same while.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from paircurate.transforms.crawl.path_rules import PathPattern, path_pattern, url_path

TDMREP_PATH = "/.well-known/tdmrep.json"
TDMREP_MAX_BYTES = 500 * 1024
RESERVED = "download_tdm_reserved"
UNAVAILABLE = "download_tdmrep_unavailable"


@dataclass(frozen=True)
class TdmDecision:
    """Whether mining is reserved, where that was said, and the policy URL if one was given."""

    reserved: bool
    source: str
    policy: str = ""

    def detail(self) -> str:
        policy = f", tdm-policy {self.policy}" if self.policy else ""
        return f"TDM rights reserved by {self.source}{policy}"


@dataclass(frozen=True)
class _Rule:
    location: str
    pattern: PathPattern
    reserved: bool
    policy: str


@dataclass(frozen=True)
class TdmRules:
    """One origin's tdmrep.json; ``unavailable``: it could not be read, the host is closed."""

    rules: tuple[_Rule, ...] = ()
    unavailable: bool = False
    why: str = ""
    reason: str = UNAVAILABLE  # of the rows while unavailable

    def decision(self, url: str) -> TdmDecision | None:
        """What the first rule whose location matches ``url``'s path says, or None."""
        path = url_path(url)
        for rule in self.rules:
            if rule.pattern.match(path):
                source = f"{TDMREP_PATH} (location {rule.location!r})"
                return TdmDecision(rule.reserved, source, rule.policy)
        return None


def rules_from_tdmrep(
    status: int | None, body: bytes | None, failure: str | None, detail: str | None = None
) -> TdmRules:
    """The origin's rules from the answer to its tdmrep.json request."""
    if body is not None and status is not None and status < 300:
        return parse_tdmrep(body)
    if status is not None and 400 <= status < 500 and status != 429:
        return TdmRules()
    if failure == "download_empty":
        return TdmRules()
    if status is not None:  # 5xx, 429
        why = f"{TDMREP_PATH} unavailable ({failure or status}): the host is off limits for now"
        return TdmRules(unavailable=True, why=why)
    why = f"{TDMREP_PATH} could not be fetched: {detail}"
    return TdmRules(unavailable=True, why=why, reason=failure or "download_error")


def stalled_tdmrep(url: str) -> TdmRules:
    """The rules of an origin whose file another thread is still fetching: closed for now."""
    why = f"{url} is still being fetched by another thread: the host is off limits for now"
    return TdmRules(unavailable=True, why=why)


def parse_tdmrep(body: bytes) -> TdmRules:
    """The rules of a tdmrep.json; anything but a JSON array reserves nothing."""
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return TdmRules()
    if not isinstance(document, list):
        return TdmRules()
    rules = []
    for item in document:
        rule = _rule(item)
        if rule is not None:
            rules.append(rule)
    return TdmRules(tuple(rules))


def _rule(item: object) -> _Rule | None:
    if not isinstance(item, Mapping):
        return None
    location, reservation = item.get("location"), item.get("tdm-reservation")
    policy = item.get("tdm-policy")
    if not isinstance(location, str) or not location:
        return None
    if reservation not in (0, 1, "0", "1") or isinstance(reservation, bool):
        return None
    policy = policy if isinstance(policy, str) else ""
    return _Rule(location, path_pattern(location), str(reservation) == "1", policy)


def header_decision(reservation: str | None, policy: str | None) -> TdmDecision | None:
    """What the tdm-reservation / tdm-policy response headers say, or None if nothing valid."""
    value = (reservation or "").strip()
    if value not in ("0", "1"):
        return None
    return TdmDecision(value == "1", "the tdm-reservation header", (policy or "").strip())
