"""Throughput of the whole caption stage (normalise + rules + language id) on real captions.

Runs ``CaptionStage`` — the code the pipeline's Captions transform calls — on the
15,833 Conceptual Captions validation captions in ../shared/data, on one core,
in batches as the pipeline forms them, and on a "mixed" copy of them in which
every fifth caption is made non-ASCII or given HTML entities (typographic
quotes and dashes, accented words, mojibake, ``&amp;``/``&quot;``/``&#39;``), so
that ftfy runs on a fifth of the input: CC3M itself is 99.8 % plain ASCII, and
plain-ASCII captions without "&" skip ftfy. The two mixes alternate within each
round; medians are kept. Last line: one JSON object (bench convention); the
target is at least 5,000 captions/s per core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter

from shared_data import cc3m_captions

os.environ.setdefault("OMP_NUM_THREADS", "1")


ACCENTED = ("café", "naïve", "façade", "jalapeño", "Zürich", "São Paulo", "crème brûlée")


def messy(caption: str, kind: int) -> str:
    """One of five kinds of web alt-text mess, each sending the caption through ftfy."""
    if kind == 0:  # HTML entities, as scraped alt attributes carry them
        return caption.replace(" and ", " &amp; ").replace("'", "&#39;") + " &quot;photo&quot;"
    if kind == 1:  # typographic punctuation
        return f"“{caption.replace(chr(39), '’')}” — stock"
    if kind == 2:  # an accented word
        return f"{caption} in {ACCENTED[len(caption) % len(ACCENTED)]}"
    if kind == 3:  # mojibake: UTF-8 read as Windows-1252
        return f"{caption} – {ACCENTED[len(caption) % len(ACCENTED)]}".encode().decode(
            "cp1252", errors="replace"
        )
    return f"{caption}&nbsp;&ndash; café"


def mixed(captions: list[str]) -> list[str]:
    """Every fifth caption made messy, the kinds in turn."""
    return [messy(c, (i // 5) % 5) if i % 5 == 0 else c for i, c in enumerate(captions)]


def run_stage(captions: list[str], backend: str, batch: int) -> tuple[float, Counter]:
    from paircurate.schemas.config import CaptionConfig
    from paircurate.transforms.ingest.caption_stage import CaptionStage
    from paircurate.transforms.ingest.langid import make_detector

    config = CaptionConfig(langid_backend=backend)
    stage = CaptionStage(config, make_detector(backend))
    rows = [{"uid": str(i), "caption": text} for i, text in enumerate(captions)]
    started = time.perf_counter()
    judged = []
    for start in range(0, len(rows), batch):
        judged += stage.apply(rows[start : start + batch])
    seconds = time.perf_counter() - started
    outcome = Counter(row.get("reason") or "passes" for row in judged)
    return seconds, outcome


def main() -> None:
    from paircurate.schemas.config import CaptionConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default=CaptionConfig().langid_backend)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    mixes = {"plain": cc3m_captions()}
    mixes["mixed"] = mixed(mixes["plain"])
    run_stage(mixes["plain"][:200], args.backend, args.batch)  # warm-up: model load, imports
    rates: dict[str, list[float]] = {name: [] for name in mixes}
    outcomes: dict[str, Counter] = {}
    for _ in range(args.repeat):
        for name, captions in mixes.items():
            seconds, outcomes[name] = run_stage(captions, args.backend, args.batch)
            rates[name].append(len(captions) / seconds)
    median = {name: statistics.median(values) for name, values in rates.items()}
    ascii_share = {
        name: sum(c.isascii() and "&" not in c for c in captions) / len(captions)
        for name, captions in mixes.items()
    }
    for name in mixes:
        print(f"{len(mixes[name])} captions ({name}, {ascii_share[name]:.1%} plain ASCII "
              f"without '&'), backend {args.backend}: median {median[name]:,.0f} captions/s "
              f"(runs: {', '.join(f'{t:,.0f}' for t in rates[name])})")  # fmt: skip
        print("  outcome:", dict(outcomes[name].most_common()))
    print(json.dumps({
        "bench": "captions", "ours": round(median["plain"], 1), "unit": "captions/s/core",
        "mixed": round(median["mixed"], 1),
        "plain_share": {k: round(v, 4) for k, v in ascii_share.items()},
        "backend": args.backend, "captions": len(mixes["plain"]), "runs": args.repeat,
        "target": 5000, "outcome": dict(outcomes["plain"].most_common()),
        "outcome_mixed": dict(outcomes["mixed"].most_common()),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
