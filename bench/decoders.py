"""Pillow against the lean decoders on the download bench's WebP and PNG images.

transforms/crawl/images.py decodes plain (8 bits per channel, one frame,
upright) WebP with OpenCV and PNG with libspng (pyspng), and everything else
with Pillow. This measures the choice on the images bench/download.py serves
(generated and cached there): CPU milliseconds per image for each decoder (best
of ``--rounds``), and whether they give the same pixels. OpenCV and Pillow both
link libwebp, but Pillow's WebP decoder builds an RGBA canvas meant for
animations before the RGB image; OpenCV's PNG decoder is measured beside
libspng.

    python bench/decoders.py --rounds 5

Last line: one JSON object (bench convention); ``ratio`` = Pillow's time / ours
on WebP, ``png_ratio`` the same on PNG.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pyspng
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from download import distinct_images  # noqa: E402 - bench scripts run as files

FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def by_pillow(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image.convert("RGB") if image.mode != "RGB" else image


def by_opencv(body: bytes) -> Image.Image:
    pixels = cv2.imdecode(np.frombuffer(body, np.uint8), FLAGS)
    height, width = pixels.shape[:2]
    return Image.frombuffer("RGB", (width, height), pixels, "raw", "BGR", 0, 1)


def by_spng(body: bytes) -> Image.Image:
    pixels = pyspng.load(body, format="RGB")
    height, width = pixels.shape[:2]
    return Image.frombuffer("RGB", (width, height), pixels, "raw", "RGB", 0, 1)


OURS = {".webp": ("opencv", by_opencv), ".png": ("spng", by_spng)}


def best_ms(decode, bodies: list[bytes], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for body in bodies:
            decode(body)
        best = min(best, time.process_time() - started)
    return round(best / len(bodies) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--distinct", type=int, default=1000, help="images of bench/download.py")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    paths = distinct_images(args.distinct)
    summary: dict = {"bench": "decoders", "unit": "ms/image (CPU)"}
    for suffix in (".webp", ".png"):
        bodies = [path.read_bytes() for path in paths if path.suffix == suffix]
        name, ours = OURS[suffix]
        same = sum(
            np.array_equal(np.asarray(by_pillow(body)), np.asarray(ours(body))) for body in bodies
        )
        found = {"images": len(bodies), "pillow": best_ms(by_pillow, bodies, args.rounds)}
        found[name] = best_ms(ours, bodies, args.rounds)
        if suffix == ".png":
            found["opencv"] = best_ms(by_opencv, bodies, args.rounds)
        found["ratio"] = round(found["pillow"] / found[name], 3)
        found["identical_pixels"] = same
        summary[suffix[1:]] = found
        print(f"{suffix[1:]}: {json.dumps(found)}", flush=True)
    summary["ours"] = summary["webp"]["opencv"]
    summary["anchor"] = summary["webp"]["pillow"]
    summary["ratio"] = summary["webp"]["ratio"]
    summary["png_ratio"] = summary["png"]["ratio"]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
