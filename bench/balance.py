"""Concept matching throughput: 500,000 entries against real captions, Aho-Corasick vs MetaCLIP.

MetaCLIP matches a caption by testing every entry of its list as a substring
(``spacing(entry) in spacing(text)``, punctuation padded with spaces so that
only whole words match): 500,000 ``in`` tests per caption. That loop, with the
entries padded once up front (its best configuration), is the anchor, timed on
a subset of the captions since it is slow. Ours is ``EntryMatcher`` (one
pyahocorasick automaton, whole-word checks on its hits), the code the Balance
step runs, over all 15,833 Conceptual Captions validation captions.

The 500,000 entries: the shipped list, every distinct 1-, 2- and 3-word
sequence of the captions (so heads and tails of real concepts are there), and
made-up words to fill the rest (as most of MetaCLIP's long tail rarely
matches). Several rounds, medians kept; the last line is one JSON object with
``ratio`` = our captions/s over the anchor's.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import string
import time

from shared_data import cc3m_captions

from paircurate.transforms.balance.entries import (
    BUILTIN_FILE,
    builtin_entries_bytes,
    normalize_entry,
    parse_entries,
)
from paircurate.transforms.balance.matching import EntryMatcher

_WORD = re.compile(r"\w+")


def make_entries(captions: list[str], size: int, seed: int = 0) -> tuple[list[str], int]:
    """``size`` distinct normalised entries, and how many of them come from real text."""
    entries = dict.fromkeys(parse_entries(builtin_entries_bytes(), BUILTIN_FILE))
    for caption in captions:
        words = _WORD.findall(normalize_entry(caption))
        for n in (1, 2, 3):
            for start in range(len(words) - n + 1):
                entries[" ".join(words[start : start + n])] = None
    real = list(entries)[:size]
    rng = random.Random(seed)
    made_up = set()
    while len(real) + len(made_up) < size:
        word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 10)))
        if word not in entries:
            made_up.add(word)
    return real + sorted(made_up), len(real)


def spacing(text: str) -> str:
    """MetaCLIP's substr_matching.spacing: pad punctuation and the ends with spaces."""
    spaced = f" {text} "
    for punct in [",", ".", ";", ":", "?", "!", "`"]:
        spaced = spaced.replace(punct, f" {punct} ")
    for char in ["\t", "\n", "\r"]:
        spaced = spaced.replace(char, " ")
    return spaced


def anchor_matches(captions: list[str], spaced_entries: list[str]) -> list[list[int]]:
    """MetaCLIP's loop: every entry tested as a substring of every (lowercased) caption."""
    found = []
    for caption in captions:
        text = spacing(caption.casefold())
        found.append([i for i, entry in enumerate(spaced_entries) if entry in text])
    return found


def ours_matches(captions: list[str], matcher: EntryMatcher) -> list[list[str]]:
    return [matcher.matches(caption) for caption in captions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=500_000)
    parser.add_argument("--anchor-captions", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    captions = [normalize_entry(c) for c in cc3m_captions()]
    entries, real = make_entries(captions, args.entries)
    builds, rates, anchor_rates = [], [], []
    subset = captions[:: max(1, len(captions) // args.anchor_captions)][: args.anchor_captions]
    spaced = [spacing(entry) for entry in entries]
    for _ in range(args.repeat):
        started = time.perf_counter()
        matcher = EntryMatcher(entries)
        builds.append(time.perf_counter() - started)
        started = time.perf_counter()
        found = ours_matches(captions, matcher)
        rates.append(len(captions) / (time.perf_counter() - started))
        started = time.perf_counter()
        anchor_found = anchor_matches(subset, spaced)
        anchor_rates.append(len(subset) / (time.perf_counter() - started))
    ours, anchor = statistics.median(rates), statistics.median(anchor_rates)
    matched = sum(bool(entries_found) for entries_found in found) / len(captions)
    per_caption = statistics.mean(len(entries_found) for entries_found in found)
    ours_subset = ours_matches(subset, matcher)
    same = sum(
        sorted(entries[i] for i in theirs) == mine
        for theirs, mine in zip(anchor_found, ours_subset, strict=True)
    ) / len(subset)
    print(f"{len(entries):,} entries ({real:,} from real text), automaton built in median "
          f"{statistics.median(builds):.2f} s")  # fmt: skip
    print(f"ours:   {ours:,.0f} captions/s over {len(captions):,} captions "
          f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}); {matched:.1%} match an entry, "
          f"{per_caption:.1f} entries per caption")  # fmt: skip
    print(f"anchor: {anchor:,.1f} captions/s over {len(subset)} captions "
          f"(runs: {', '.join(f'{r:,.1f}' for r in anchor_rates)}); same entries on "
          f"{same:.0%} of them")  # fmt: skip
    print(json.dumps({
        "bench": "balance", "ours": round(ours, 1), "anchor": round(anchor, 2),
        "unit": "captions/s/core", "ratio": round(ours / anchor, 1),
        "anchor_name": "MetaCLIP substring loop over entries", "entries": len(entries),
        "entries_from_text": real, "build_s": round(statistics.median(builds), 3),
        "captions": len(captions), "anchor_captions": len(subset), "runs": args.repeat,
        "matched_share": round(matched, 4), "entries_per_caption": round(per_caption, 2),
        "same_entries_share": round(same, 4),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
