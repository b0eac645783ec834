"""Quality of CLIP-score filtering with the reference scorer, on a held-out synthetic web.

The web (``--pairs`` rows, seed ``--seed``, default mix) is one that neither
training (seed 1001) nor calibration (seed 1001, later rows) saw. Every row that
serves a decodable image is scored with the shipped checkpoint through the same
open_clip path as a real model, and filtered at ``REFERENCE_THRESHOLD``:

* ``mismatch_removed``: share of "mismatched" rows (caption of another scene)
  below the threshold; the issue asks for at least 0.95;
* ``clean_kept``: share of matching rows ("clean" and the clean-but-foreign
  "non_english") at or above it; the issue asks for at least 0.90.

The headline figures are the job's: the demo job (download, resize with
border padding, Score step via RunInference, thresholds) over the same web,
read back from its ledger. The same figures for scoring the decoded originals
directly are ``direct_mismatch_removed`` / ``direct_clean_kept``.

Anchor, measured in the same run: the same architecture untrained (random
weights, seed 0) at the best threshold for this very web, i.e. what the
figures would be without learning anything.

    .venv/bin/python bench/clip_quality.py [--pairs 2000] [--seed 2002]

Prints a per-label table, then one JSON line (bench convention).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import open_clip
import torch

from paircurate.synthweb import SyntheticWeb
from paircurate.synthweb.reference_training import (
    LabelledScores,
    Scorer,
    best_threshold,
    filter_quality,
    labelled_pairs,
    load_reference_scorer,
    score_pairs,
)
from paircurate.transforms.scoring.reference_scorer import (
    CHECKPOINT_PATH,
    MODEL_NAME,
    REFERENCE_THRESHOLD,
    register_reference_model,
)

HELD_OUT_SEED = 2002


def label_table(scores: LabelledScores, threshold: float) -> list[dict]:
    """Per label: rows scored, score spread, and the share at or above the threshold."""
    rows = []
    labels = np.array(scores.labels)
    for label in sorted(set(scores.labels)):
        values = scores.scores[labels == label]
        rows.append(
            {
                "label": label,
                "rows": int(values.size),
                "mean": round(float(values.mean()), 4),
                "min": round(float(values.min()), 4),
                "max": round(float(values.max()), 4),
                "kept": round(float((values >= threshold).mean()), 4),
            }
        )
    return rows


def untrained_scorer() -> Scorer:
    """The same architecture with random weights (seed 0): the anchor."""
    torch.manual_seed(0)
    register_reference_model()
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL_NAME)
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(MODEL_NAME)


def score_both(
    web: SyntheticWeb, scorers: tuple[Scorer, Scorer], batch_size: int = 128
) -> tuple[LabelledScores, LabelledScores]:
    """Scores of every row with an image by both scorers, decoding each image once."""
    trained, anchor, labels = [], [], []
    for start in range(0, len(web), batch_size):
        images, captions, batch_labels = labelled_pairs(
            web, range(start, min(start + batch_size, len(web)))
        )
        trained.append(score_pairs(scorers[0], images, captions))
        anchor.append(score_pairs(scorers[1], images, captions))
        labels.extend(batch_labels)
    return (
        LabelledScores(np.concatenate(trained), labels),
        LabelledScores(np.concatenate(anchor), labels),
    )


def job_quality(pairs: int, seed: int, threshold: float) -> dict[str, float]:
    """Run the demo job over the web and read the filter's outcome from its ledger."""
    import tempfile

    import pyarrow.parquet as pq

    from paircurate.pipeline.demo import run_demo

    with tempfile.TemporaryDirectory(prefix="clip-quality-") as output:
        run_demo(output, pairs, seed, ["--clip-threshold", str(threshold)])
        ledger = pq.read_table(Path(output, "ledger")).to_pylist()
    scored = [row for row in ledger if row["clip_score"] is not None]
    mismatched = [row for row in scored if row["truth_label"] == "mismatched"]
    matching = [row for row in scored if row["truth_label"] in ("clean", "non_english")]
    below = "clip_below_threshold"
    return {
        "mismatch_removed": sum(row["reason"] == below for row in mismatched) / len(mismatched),
        "clean_kept": sum(row["reason"] != below for row in matching) / len(matching),
        "job_mismatched": len(mismatched),
        "job_matching": len(matching),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000, help="rows of the held-out web")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="held-out web seed")
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT_PATH)
    parser.add_argument("--threshold", type=float, default=REFERENCE_THRESHOLD)
    args = parser.parse_args()
    torch.set_num_threads(2)

    started = time.perf_counter()
    web = SyntheticWeb(args.pairs, seed=args.seed)
    scorers = (load_reference_scorer(checkpoint=args.checkpoint), untrained_scorer())
    scores, anchor_scores = score_both(web, scorers)
    seconds = time.perf_counter() - started
    quality = filter_quality(scores, args.threshold)
    job = job_quality(args.pairs, args.seed, args.threshold)
    oracle = best_threshold(scores.matching(), scores.mismatched())
    anchor_threshold = best_threshold(anchor_scores.matching(), anchor_scores.mismatched())
    anchor = {"threshold": anchor_threshold, **filter_quality(anchor_scores, anchor_threshold)}

    print(f"{'label':16} {'rows':>5} {'mean':>7} {'min':>7} {'max':>7} {'kept':>6}")
    for row in label_table(scores, args.threshold):
        print(
            f"{row['label']:16} {row['rows']:5d} {row['mean']:7.4f} {row['min']:7.4f}"
            f" {row['max']:7.4f} {row['kept']:6.3f}"
        )
    print(
        json.dumps(
            {
                "bench": "clip_quality",
                **{key: round(value, 4) for key, value in job.items()},
                **{f"direct_{key}": round(value, 4) for key, value in quality.items()},
                "threshold": args.threshold,
                "pairs": args.pairs,
                "seed": args.seed,
                "scored": len(scores.labels),
                "mismatched": int(scores.mismatched().size),
                "matching": int(scores.matching().size),
                "best_threshold_here": round(oracle, 4),
                "anchor_untrained": {k: round(v, 4) for k, v in anchor.items()},
                "seconds": round(seconds, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
