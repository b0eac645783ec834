"""Throughput of the CLIP scoring stage against a bare open_clip loop, in the same run.

Both sides score the same decoded photos (``../shared/data/openimages_ccby``, 18
photos repeated to ``--images``, default 96) with the same captions (Conceptual Captions
validation), the same ViT-B-32 model object, batch size, torch threads and device:

* ours: ``ClipScorer.score`` of ``paircurate.transforms.scoring.clip`` (eval transform,
  tokenizer, truncation flags, both towers, normalise, cosine, numpy out);
* anchor: the loop a user writes with open_clip alone: preprocess, tokenizer,
  ``encode_image``, ``encode_text``, normalise, dot product, scores to numpy.

ViT-B-32 has random weights (``pretrained=None``): nothing can be downloaded here,
and random weights cost the same FLOPs. Runs alternate which side goes first; the
ratio is the median of the per-run ratios ours/anchor. Target: >= 0.85.

    .venv/bin/python bench/clip_score.py [--images 96] [--batch-size 32] [--device cpu]

On our shared 2-core machines ViT-B-32 scored only 3-7 pairs/s (other jobs held
the cores), so the default (3 runs of 96 pairs per side, plus a warm-up batch:
608 pairs) took 3.4 minutes; free cores should be several times faster. On a GPU,
pass ``--device cuda --images 4096``.
Last line: one JSON object (bench convention).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from itertools import cycle, islice

import numpy as np
import open_clip
import torch
from PIL import Image
from shared_data import DATA, cc3m_captions

from paircurate.transforms.scoring.clip import ClipScorer

MODEL = "ViT-B-32"


def decoded_photos(count: int) -> list[Image.Image]:
    """The shared photos, decoded once to RGB, repeated to ``count`` images."""
    paths = sorted((DATA / "openimages_ccby").glob("*.jpg"))
    if not paths:
        raise SystemExit(f"no photos in {DATA / 'openimages_ccby'}: this bench needs them")
    photos = []
    for path in paths:
        with Image.open(path) as image:
            photos.append(image.convert("RGB"))
    return list(islice(cycle(photos), count))


def anchor_loop(
    model: torch.nn.Module,
    preprocess: Callable[[Image.Image], torch.Tensor],
    tokenizer: Callable[..., torch.Tensor],
    device: torch.device,
    batch_size: int,
) -> Callable[[list[Image.Image], list[str]], np.ndarray]:
    """The bare open_clip loop: cosine of each image with its caption, as numpy."""

    def score(images: list[Image.Image], captions: list[str]) -> np.ndarray:
        parts = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                stop = start + batch_size
                pixels = torch.stack([preprocess(image) for image in images[start:stop]])
                tokens = tokenizer(captions[start:stop])
                image_features = model.encode_image(pixels.to(device))
                text_features = model.encode_text(tokens.to(device))
                image_features = image_features / image_features.norm(dim=-1, keepdim=True)
                text_features = text_features / text_features.norm(dim=-1, keepdim=True)
                parts.append((image_features * text_features).sum(dim=-1).cpu().numpy())
        return np.concatenate(parts)

    return score


def timed(score: Callable[[], np.ndarray], count: int) -> tuple[float, np.ndarray]:
    """Images per second of one call, and what it returned (numpy: the device is done)."""
    started = time.perf_counter()
    scores = score()
    return count / (time.perf_counter() - started), scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=96, help="pairs scored per run and side")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per forward")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per side")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    images, captions = decoded_photos(args.images), cc3m_captions()[: args.images]
    model, _, preprocess = open_clip.create_model_and_transforms(
        MODEL, pretrained=None, device=device
    )
    model.eval()
    tokenizer = open_clip.get_tokenizer(MODEL)
    scorer = ClipScorer.from_model(model, preprocess, tokenizer, device, args.batch_size)
    sides = {
        "ours": lambda: scorer.score(images, captions).scores,
        "anchor": lambda: anchor_loop(model, preprocess, tokenizer, device, args.batch_size)(
            images, captions
        ),
    }
    warm = args.batch_size
    scorer.score(images[:warm], captions[:warm])  # first-call costs, for both sides alike
    rates: dict[str, list[float]] = {"ours": [], "anchor": []}
    for run in range(args.runs):
        order = ("anchor", "ours") if run % 2 == 0 else ("ours", "anchor")
        results = {}
        for side in order:
            rate, results[side] = timed(sides[side], len(images))
            rates[side].append(rate)
        difference = float(np.abs(results["ours"] - results["anchor"]).max())
        ours, anchor = rates["ours"][-1], rates["anchor"][-1]
        print(
            f"run {run + 1}: ours {ours:.1f} images/s, anchor {anchor:.1f} images/s, "
            f"ratio {ours / anchor:.3f}, max score difference {difference:.2e}",
            flush=True,
        )
    ratios = [ours / anchor for ours, anchor in zip(rates["ours"], rates["anchor"], strict=True)]
    summary = {
        "bench": "clip_score",
        "ours": round(statistics.median(rates["ours"]), 2),
        "anchor": round(statistics.median(rates["anchor"]), 2),
        "unit": "images/s",
        "ratio": round(statistics.median(ratios), 3),
        "batch_size": args.batch_size,
        "threads": args.threads,
        "device": args.device,
        "images": args.images,
        "model": f"{MODEL} (random weights)",
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
