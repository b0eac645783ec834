"""AI-usage preferences: the IETF AI Preferences vocabulary and Cloudflare's Content Signals.

Two conventions say "not for AI training" apart from robots.txt's Disallow:

- The IETF AI Preferences drafts (aipref vocab and attach): a ``Content-Usage``
  response header, or a ``Content-Usage: [path] prefs`` rule in a robots.txt
  group, whose preferences are ``category=y|n`` (``bots``, ``train-ai``,
  ``train-genai``, ``search``). A more specific category overrides a broader
  one: ``train-ai`` decides when stated, ``bots`` (all automated processing)
  only when it is not. ``train-genai=n`` counts as a no too: image-text pairs
  like ours train the encoders and conditioning of generative models.
- Cloudflare's Content Signals Policy: ``Content-Signal: search=yes, ai-train=no``
  in a robots.txt group (yes / no; an absent signal states nothing).

Both answer with the one reason ``download_ai_optout``; its detail names the
source and the preference. X-Robots-Tag directives (``noai``, ``noimageai``,
``noml``) stay with robots.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from paircurate.transforms.crawl.path_rules import PathPattern, path_pattern, url_path

AI_OPTOUT = "download_ai_optout"
CONTENT_USAGE, CONTENT_SIGNAL = "content-usage", "content-signal"


def parse_preferences(text: str) -> dict[str, str]:
    """``"train-ai=n, search=y"`` (a structured-field dictionary) as {"train-ai": "n", ...}.

    Parameters after ';' are dropped; a key with no value is ``"?1"`` (true) as RFC 9651 has it.
    """
    found: dict[str, str] = {}
    for member in text.split(","):
        key, equals, value = member.split(";", 1)[0].partition("=")
        key = key.strip().lower()
        if key:
            found[key] = value.strip().strip('"').lower() if equals else "?1"
    return found


def usage_refusal(preferences: dict[str, str]) -> str | None:
    """The Content-Usage preference that refuses AI training, as ``key=value``, or None."""
    if preferences.get("train-ai") == "n":
        return "train-ai=n"
    if preferences.get("train-genai") == "n":
        return "train-genai=n"
    if "train-ai" not in preferences and preferences.get("bots") == "n":
        return "bots=n"
    return None


def signal_refusal(signals: dict[str, str]) -> str | None:
    """The Content-Signal that refuses AI training, or None."""
    return "ai-train=no" if signals.get("ai-train") == "no" else None


def header_refusal(content_usage: Iterable[str]) -> str | None:
    """(detail) when a Content-Usage response header refuses AI training, else None."""
    for value in content_usage:
        refused = usage_refusal(parse_preferences(value))
        if refused is not None:
            return f"Content-Usage header: {refused}"
    return None


@dataclass(frozen=True)
class _Rule:
    field: str  # content-usage or content-signal
    pattern: PathPattern
    length: int  # of the path as written: the longest match wins, as with Allow/Disallow
    values: dict[str, str]


@dataclass(frozen=True)
class AiPreferences:
    """The Content-Usage and Content-Signal rules of the robots.txt groups for one agent."""

    rules: tuple[_Rule, ...] = field(default=())

    def refusal(self, url: str) -> str | None:
        """(detail) when the rule for ``url``'s path refuses AI training, else None.

        Per field, the rule with the longest matching path applies (no path: "/").
        """
        path = url_path(url)
        for name, refuse in ((CONTENT_USAGE, usage_refusal), (CONTENT_SIGNAL, signal_refusal)):
            matching = [r for r in self.rules if r.field == name and r.pattern.match(path)]
            if not matching:
                continue
            rule = max(matching, key=lambda r: r.length)  # max keeps the first of equals
            refused = refuse(rule.values)
            if refused is not None:
                title = "Content-Usage" if name == CONTENT_USAGE else "Content-Signal"
                return f"robots.txt {title}: {refused}"
        return None


def ai_preferences_from_robots_txt(lines: Iterable[str], agent: str) -> AiPreferences:
    """The preference rules that apply to ``agent``: those of its groups, else of ``*``.

    Groups start with one or more User-agent lines (RFC 9309); rules outside any
    group apply to every agent.
    """
    token = (agent or "*").lower()
    groups: list[tuple[set[str], list[tuple[str, str]]]] = []
    outside: list[tuple[str, str]] = []
    agents: set[str] | None = None
    rules: list[tuple[str, str]] = []
    in_rules = False  # a rule line ends the group's run of User-agent lines
    for line in lines:
        key, colon, value = line.split("#", 1)[0].partition(":")
        key, value = key.strip().lower(), value.strip()
        if not colon:
            continue
        if key == "user-agent":
            if agents is None or in_rules:
                agents, rules, in_rules = set(), [], False
                groups.append((agents, rules))
            agents.add(value.lower())
            continue
        in_rules = True
        if key in (CONTENT_USAGE, CONTENT_SIGNAL):
            (rules if agents is not None else outside).append((key, value))
    ours = [found for names, found in groups if token in names]
    if not ours:
        ours = [found for names, found in groups if "*" in names]
    chosen = outside + [rule for found in ours for rule in found]
    return AiPreferences(tuple(_rule(key, value) for key, value in chosen))


def _rule(key: str, value: str) -> _Rule:
    path, _, rest = value.partition(" ")
    if not path.startswith("/"):
        path, rest = "/", value
    return _Rule(key, path_pattern(path), len(path), parse_preferences(rest.strip()))
