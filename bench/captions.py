"""Throughput of the whole caption stage (normalise + rules + language id) on real captions.

Runs ``CaptionStage`` — the code the pipeline's Captions transform calls — on the
15,833 Conceptual Captions validation captions in ../shared/data, on one core,
in batches as the pipeline forms them. Last line: one JSON object (bench
convention); the target is at least 5,000 captions/s per core.
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


def run_stage(captions: list[str], backend: str, batch: int) -> tuple[float, Counter]:
    from paircurate.schemas.config import CaptionConfig
    from paircurate.transforms.ingest.caption_stage import CaptionStage
    from paircurate.transforms.ingest.langid import make_detector

    config = CaptionConfig(langid_backend=backend)
    stage = CaptionStage(config, make_detector(backend))
    rows = [{"uid": str(i), "caption": text} for i, text in enumerate(captions)]
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        stage.apply(rows[start : start + batch])
    seconds = time.perf_counter() - started
    outcome = Counter(row.get("reason") or "passes" for row in rows)
    return seconds, outcome


def main() -> None:
    from paircurate.schemas.config import CaptionConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default=CaptionConfig().langid_backend)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    captions = cc3m_captions()
    run_stage(captions[:200], args.backend, args.batch)  # warm-up: model load, imports
    timings = []
    for _ in range(args.repeat):
        seconds, outcome = run_stage(captions, args.backend, args.batch)
        timings.append(len(captions) / seconds)
    rate = statistics.median(timings)
    print(f"{len(captions)} captions, backend {args.backend}: median {rate:,.0f} captions/s "
          f"(runs: {', '.join(f'{t:,.0f}' for t in timings)})")  # fmt: skip
    print("outcome:", dict(outcome.most_common()))
    print(json.dumps({
        "bench": "captions", "ours": round(rate, 1), "unit": "captions/s/core",
        "backend": args.backend, "captions": len(captions), "target": 5000,
        "outcome": dict(outcome.most_common()),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
