"""Opt-out signals of site owners: X-Robots-Tag headers and robots.txt files.

Both are read the way img2dataset and search crawlers read them, so that a site
that opted out of AI training for one crawler has opted out of ours too. The
robots.txt rules are fetched once per origin and shared by every thread; the
same per-origin cache holds each origin's /.well-known/tdmrep.json (tdmrep.py).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from paircurate.transforms.crawl.directives import AiPreferences, ai_preferences_from_robots_txt

# Directives that carry a value after a colon; "unavailable_after: <date>" names no agent.
_VALUED_DIRECTIVES = frozenset(
    {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
)
ROBOTS_TXT_MAX_BYTES = 500 * 1024  # what Google reads of a robots.txt (RFC 9309 asks >= 500 KiB)


def opted_out_by(
    header_values: Iterable[str], agent_token: str, disallowed: frozenset[str]
) -> str | None:
    """The first disallowed directive that applies to us, as text for reason_detail, or None.

    A value is ``directive, directive`` (for every crawler) or ``agent: directive``
    (for one crawler only: it applies when the agent is our ``agent_token``).
    """
    token = agent_token.lower()
    for value in header_values:
        agent, directives = _split_agent(value)
        if agent is not None and agent != token:
            continue
        for directive in directives:
            if directive in disallowed:
                return f"{agent}: {directive}" if agent else directive
    return None


def _split_agent(value: str) -> tuple[str | None, list[str]]:
    head, colon, rest = value.partition(":")
    head = head.strip().lower()
    named = (
        colon and head and head not in _VALUED_DIRECTIVES and "," not in head and " " not in head
    )
    text = rest if named else value
    directives = [part.split(":", 1)[0].strip().lower() for part in text.split(",")]
    return (head if named else None), directives


DISALLOWED = "download_robots_disallowed"
UNAVAILABLE = "download_robots_unavailable"
# How long an unreadable robots.txt keeps its host closed before it is asked for again.
UNAVAILABLE_TTL_S = 120.0


@dataclass(frozen=True)
class RobotsRules:
    """What one origin's robots.txt says; ``parser`` None means ``verdict`` holds for every path.

    ``unavailable``: the file could not be read (5xx, 429, no answer), so every
    path is off limits for now, RFC 9309's "complete disallow".
    """

    parser: RobotFileParser | None = None
    verdict: bool = True
    why: str = ""
    unavailable: bool = False
    preferences: AiPreferences = field(default_factory=AiPreferences)

    def allows(self, url: str, agent: str) -> tuple[bool, str]:
        if self.parser is None:
            return self.verdict, self.why
        if self.parser.can_fetch(agent, url):
            return True, ""
        return False, f"robots.txt disallows {urlsplit(url).path or '/'} for {agent!r}"

    def refusal(self, url: str, agent: str) -> tuple[str, str] | None:
        """(reason code, detail) when ``url`` may not be fetched, else None."""
        allowed, why = self.allows(url, agent)
        if allowed:
            return None
        return (UNAVAILABLE if self.unavailable else DISALLOWED), why


def rules_from_fetch(
    status: int | None, body: bytes | None, failure: str | None, agent: str = ""
) -> RobotsRules:
    """Rules per RFC 9309: a 4xx means no rules; a 5xx or no answer means stay out for now.

    The AI-usage preferences of the groups that apply to ``agent`` come along.
    """
    if body is not None and status is not None and status < 300:
        lines = body.decode("utf-8", errors="replace").splitlines()
        parser = RobotFileParser()
        parser.parse(lines)
        return RobotsRules(parser=parser, preferences=ai_preferences_from_robots_txt(lines, agent))
    if status is not None and 400 <= status < 500 and status != 429:
        return RobotsRules(verdict=True)
    if failure == "download_empty":
        return RobotsRules(verdict=True)
    why = f"robots.txt unavailable ({failure or status}): the host is off limits for now"
    return RobotsRules(verdict=False, why=why, unavailable=True)


def _stalled(url: str) -> RobotsRules:
    why = f"{url} is still being fetched by another thread: the host is off limits for now"
    return RobotsRules(verdict=False, why=why, unavailable=True)


class _Rules(Protocol):
    unavailable: bool


RulesT = TypeVar("RulesT", bound=_Rules)


@dataclass
class _Entry(Generic[RulesT]):
    rules: RulesT
    ready: threading.Event = field(default_factory=threading.Event)
    fetched_at: float = 0.0

    def stale(self, now: float) -> bool:
        """An unreadable file is asked for again after a while; a read one is kept."""
        ready = self.ready.is_set()
        return ready and self.rules.unavailable and now - self.fetched_at >= UNAVAILABLE_TTL_S


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class OriginCache(Generic[RulesT]):
    """A file per origin (robots.txt, tdmrep.json), read once: the first thread to ask fetches
    it, the others wait. ``fetch`` takes the file's URL and returns its rules; rules that are
    ``unavailable`` are fetched again once UNAVAILABLE_TTL_S has passed.

    The fetch runs under a deadline of its own; a thread that waits on another's
    fetch waits at most ``wait_s`` and then takes ``stalled(url)``, rules that
    keep the host closed for now: a stalled file holds its host's images no
    longer than that.
    """

    def __init__(
        self,
        fetch: Callable[[str], RulesT],
        path: str,
        empty: RulesT,
        max_origins: int = 4096,
        wait_s: float | None = None,
        stalled: Callable[[str], RulesT] | None = None,
    ):
        self._fetch = fetch
        self._path = path
        self._empty = empty
        self._max_origins = max_origins
        self._wait_s, self._stalled = wait_s, stalled
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry[RulesT]] = OrderedDict()

    def rules(self, url: str) -> RulesT:
        """The rules of ``url``'s origin, fetched on first use."""
        origin = origin_of(url)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(origin)
            owner = entry is None or entry.stale(now)
            if owner:
                entry = self._entries[origin] = _Entry(self._empty, fetched_at=now)
                if len(self._entries) > self._max_origins:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(origin)
        if owner:
            try:
                entry.rules = self._fetch(origin + self._path)
            finally:
                entry.ready.set()
        elif not entry.ready.wait(self._wait_s) and self._stalled is not None:
            return self._stalled(origin + self._path)
        return entry.rules


class RobotsCache(OriginCache[RobotsRules]):
    """robots.txt rules per origin."""

    def __init__(
        self,
        fetch: Callable[[str], RobotsRules],
        agent: str,
        max_origins: int = 4096,
        wait_s: float | None = None,
    ):
        super().__init__(fetch, "/robots.txt", RobotsRules(), max_origins, wait_s, _stalled)
        self.agent = agent or "*"

    def refusal(self, url: str) -> tuple[str, str] | None:
        """(reason, detail) when robots.txt keeps us from ``url``, else None.

        Fetches the origin's robots.txt on first use, and again once an
        unreadable one has kept the host closed for UNAVAILABLE_TTL_S.
        """
        return self.rules(url).refusal(url, self.agent)
