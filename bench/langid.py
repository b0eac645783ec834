"""Language identification: accuracy and captions/s on one core, every backend.

Reads the Multi30k validation captions (en, de, fr, cs; 1,014 line-aligned captions each)
from ``shared/data`` beside the repository, and the project's own captions in zh, ja, ko, ar,
ru, hi, th, el, he and vi (``bench/langid_captions.tsv``, about 60 each, many of them short
Chinese captions without spaces). langdetect is measured in the same run as the anchor.
Prints a table, then one JSON line with each backend's accuracy per language.

    .venv/bin/python bench/langid.py [--repeats 3]
"""

from __future__ import annotations

import os

# One core: fix thread pools before any numeric library is imported.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from shared_data import data_file  # noqa: E402

from paircurate.schemas.config import CaptionConfig, ConfigError  # noqa: E402
from paircurate.transforms.ingest.langid import (  # noqa: E402
    BACKENDS,
    LanguageDetector,
    make_detector,
)

MULTI30K_LANGUAGES = ("en", "de", "fr", "cs")
OWN_CAPTIONS = Path(__file__).with_name("langid_captions.tsv")
OWN_LANGUAGES = ("zh", "ja", "ko", "ar", "ru", "hi", "th", "el", "he", "vi")
LANGUAGES = MULTI30K_LANGUAGES + OWN_LANGUAGES
ANCHOR = "langdetect"
DEFAULT_BACKEND = CaptionConfig().langid_backend


def load_captions() -> list[tuple[str, str]]:
    """(language, caption) pairs from multi30k_val.{en,de,fr,cs} and the project's own file."""
    pairs = []
    for language in MULTI30K_LANGUAGES:
        path = data_file(f"multi30k_val.{language}")
        lines = path.read_text(encoding="utf-8").splitlines()
        pairs.extend((language, line.strip()) for line in lines if line.strip())
    for line in OWN_CAPTIONS.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            language, caption = line.split("\t", 1)
            pairs.append((language, caption))
    return pairs


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def measure(detector: LanguageDetector, pairs: list[tuple[str, str]], repeats: int) -> dict:
    texts = [text for _, text in pairs]
    detector.detect_batch(texts[:10])  # load the model outside the timing
    seconds = []
    detections = []
    for _ in range(repeats):
        start = time.perf_counter()
        detections = detector.detect_batch(texts)
        seconds.append(time.perf_counter() - start)
    correct = sum(d.language == lang for d, (lang, _) in zip(detections, pairs, strict=True))
    per_language = {
        language: round(
            sum(
                d.language == lang
                for d, (lang, _) in zip(detections, pairs, strict=True)
                if lang == language
            )
            / sum(lang == language for lang, _ in pairs),
            4,
        )
        for language in LANGUAGES
    }
    return {
        "accuracy": round(correct / len(pairs), 4),
        "captions_per_s": round(len(texts) / statistics.median(seconds), 1),
        "per_language": per_language,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per backend")
    args = parser.parse_args(argv)
    pin_one_core()
    pairs = load_captions()

    results = {}
    for backend in BACKENDS:
        try:
            detector = make_detector(backend)
        except ConfigError as error:
            print(f"skip {backend}: {error}")
            continue
        results[backend] = measure(detector, pairs, args.repeats)
    if ANCHOR not in results or DEFAULT_BACKEND not in results:
        sys.exit(f"bench/langid.py: needs both {ANCHOR} and {DEFAULT_BACKEND} installed")

    anchor = results[ANCHOR]
    header = f"{'backend':<11} {'accuracy':>8} {'captions/s':>11} {'x ' + ANCHOR:>13}  " + " ".join(
        f"{language:>6}" for language in LANGUAGES
    )
    print(f"{len(pairs)} captions ({', '.join(LANGUAGES)}), one core")
    print(header)
    for backend, result in results.items():
        ratio = result["captions_per_s"] / anchor["captions_per_s"]
        per_language = " ".join(f"{result['per_language'][lang]:>6.3f}" for lang in LANGUAGES)
        print(
            f"{backend:<11} {result['accuracy']:>8.4f} {result['captions_per_s']:>11.1f} "
            f"{ratio:>13.1f}  {per_language}"
        )
    ours = results[DEFAULT_BACKEND]
    summary = {
        "bench": "langid",
        "ours": ours["captions_per_s"],
        "unit": "captions/s/core",
        "anchor": anchor["captions_per_s"],
        "ratio": round(ours["captions_per_s"] / anchor["captions_per_s"], 1),
        "accuracy": ours["accuracy"],
        "anchor_accuracy": anchor["accuracy"],
        "default": DEFAULT_BACKEND,
        "per_language": ours["per_language"],
        "min_language_accuracy": min(ours["per_language"].values()),
        "backends": {
            backend: {
                "accuracy": r["accuracy"],
                "captions_per_s": r["captions_per_s"],
                "per_language": r["per_language"],
            }
            for backend, r in results.items()
        },
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
