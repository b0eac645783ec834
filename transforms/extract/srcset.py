"""The source a browser picks among ``src``, ``srcset``, ``sizes`` and ``<picture>``'s sources.

Follows the HTML standard's "parse a srcset attribute" (URLs may hold commas,
descriptors follow), its rule that ``src`` is the 1x candidate when the set
has no 1x and no width descriptors, and "select an image source": with width
descriptors each candidate's density is its width over the slot size that
``sizes`` gives for the viewport; the browser takes the smallest density at
least the device pixel ratio, else the largest. Media conditions are
evaluated for a viewport of a given width (min-width and max-width, in px,
em and rem, joined by "and"); any condition we cannot evaluate is false, as
is any length we cannot evaluate (calc(), container units), so the next
entry or 100vw applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EM_PX = 16.0
_SPACE = " \t\n\r\f"
_FEATURE = re.compile(r"^\(\s*(min|max)-width\s*:\s*([0-9.]+)\s*(px|em|rem)\s*\)$", re.I)
_LENGTH = re.compile(r"^([0-9.]+)\s*(px|em|rem|vw)$", re.I)


@dataclass(frozen=True)
class Candidate:
    """One image candidate: its URL and its density or width descriptor."""

    url: str
    density: float | None = None
    width: int | None = None


def parse_srcset(value: str) -> list[Candidate]:
    """The candidates of a srcset attribute, invalid ones left out."""
    candidates: list[Candidate] = []
    position, size = 0, len(value)
    while position < size:
        while position < size and (value[position] in _SPACE or value[position] == ","):
            position += 1
        if position >= size:
            break
        start = position
        while position < size and value[position] not in _SPACE:
            position += 1
        url = value[start:position]
        descriptors: list[str] = []
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            descriptors, position = _descriptors(value, position)
        candidate = _candidate(url, descriptors)
        if candidate is not None:
            candidates.append(candidate)
    return candidates


def _descriptors(value: str, position: int) -> tuple[list[str], int]:
    """The descriptor tokens after a URL, up to the comma that ends the candidate."""
    tokens: list[str] = []
    current, depth = "", 0
    while position < len(value):
        char = value[position]
        position += 1
        if depth == 0 and char == ",":
            break
        if depth == 0 and char in _SPACE:
            if current:
                tokens.append(current)
                current = ""
            continue
        depth += (char == "(") - (char == ")" and depth > 0)
        current += char
    if current:
        tokens.append(current)
    return tokens, position


def _candidate(url: str, descriptors: list[str]) -> Candidate | None:
    if not url:
        return None
    density: float | None = None
    width: int | None = None
    for token in descriptors:
        kind, number = token[-1:].lower(), token[:-1]
        try:
            if kind == "x" and density is None and width is None:
                density = float(number)
            elif kind == "w" and width is None and density is None and number.isdigit():
                width = int(number)
            elif kind == "h" and number.isdigit():
                continue
            else:
                return None
        except ValueError:
            return None
    if (density is not None and density <= 0) or width == 0:
        return None
    return Candidate(url, density, width)


def media_matches(query: str | None, viewport: int) -> bool:
    """Whether a media query (as in ``<source media>`` or ``sizes``) holds for the viewport."""
    if query is None or not query.strip() or query.strip().lower() in ("all", "screen"):
        return True
    matched = True
    for part in re.split(r"\s+and\s+", query.strip(), flags=re.I):
        part = part.strip()
        if part.lower() in ("all", "screen", "only screen"):
            continue
        feature = _FEATURE.match(part)
        if feature is None:
            return False
        bound = float(feature.group(2)) * (1.0 if feature.group(3).lower() == "px" else EM_PX)
        minimum = feature.group(1).lower() == "min"
        matched = matched and (viewport >= bound if minimum else viewport <= bound)
    return matched


def _length(text: str, viewport: int) -> float | None:
    match = _LENGTH.match(text.strip())
    if match is None:
        return None
    number, unit = float(match.group(1)), match.group(2).lower()
    return {"px": number, "em": number * EM_PX, "rem": number * EM_PX}.get(
        unit, number * viewport / 100.0
    )


def slot_size(sizes: str | None, viewport: int, declared_width: int | None) -> float:
    """The CSS pixel width ``sizes`` gives the image: the first entry whose condition holds.

    ``sizes="auto"`` (lazy images) stands for the laid-out width, which the
    declared width attribute tells where present.
    """
    if sizes:
        for entry in sizes.split(","):
            entry = entry.strip()
            if entry.lower() == "auto":
                if declared_width:
                    return float(declared_width)
                continue
            condition, _, length_text = entry.rpartition(" ")
            if (
                condition
                and condition.strip().endswith(")")
                and not media_matches(condition, viewport)
            ):
                continue
            length = _length(length_text, viewport)
            if length is not None and length > 0:
                return length
    return float(viewport)


def pick(
    candidates: list[Candidate],
    src: str | None,
    sizes: str | None,
    viewport: int,
    pixel_ratio: float,
    declared_width: int | None = None,
) -> tuple[str, bool] | None:
    """(the URL a browser loads, whether it came from the srcset), or None without any source."""
    has_widths = any(c.width is not None for c in candidates)
    has_one_x = any(c.density == 1.0 or (c.density is None and c.width is None) for c in candidates)
    pool = list(candidates)
    if src and not has_widths and not has_one_x:
        pool.append(Candidate(src, 1.0))
    if not pool:
        return None
    slot = slot_size(sizes, viewport, declared_width) if has_widths else 1.0
    scored = []
    for order, candidate in enumerate(pool):
        if candidate.width is not None:
            density = candidate.width / slot
        else:
            density = candidate.density if candidate.density is not None else 1.0
        scored.append((density, order, candidate))
    enough = [item for item in scored if item[0] >= pixel_ratio]
    chosen = min(enough)[2] if enough else max(scored, key=lambda item: (item[0], -item[1]))[2]
    from_srcset = not (src and chosen is pool[-1] and len(pool) > len(candidates))
    return chosen.url, from_srcset
