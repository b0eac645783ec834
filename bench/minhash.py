"""Speed and LSH recall/precision of the vectorised caption MinHash (transforms/dedup/minhash.py).

Corpus: the 15,833 Conceptual Captions validation captions in ../shared/data,
plus one edited copy each of a seeded random 2,000 of them (edit kinds: case
change, punctuation change, one word added, one word dropped, a " - stock
photo" style suffix). Each (original, edit) is a labelled near-duplicate pair.

Speed, one core, captions to signatures in every case (folding and shingling
included everywhere, 128 permutations, seed 1, the whole corpus), the
contenders alternating within each of ``--repeats`` rounds, medians kept:

* ours: ``MinHasher().signatures(captions)``;
* anchor: ``[shingles(c) for c in captions]`` then datasketch ``MinHash.bulk``
  with C xxhash's ``xxh32_intdigest`` as ``hashfunc``, datasketch's documented
  fast path (its default SHA-1 is slower, and our ``shingle_hash`` is pure
  Python). The signatures are valid MinHash of the same shingle sets, with
  another hash, so the work is the same;
* rensa: the Rust MinHash library's batch API,
  ``RMinHash.digest_matrix_from_token_sets`` on the same shingles as ``str``
  (its ASCII fast path), one thread (``RAYON_NUM_THREADS=1``);
* bulk_same_hash (context): ``MinHash.bulk`` with our ``shingle_hash``, the
  configuration whose signatures are bit-identical to ours: what datasketch
  compatibility costs on datasketch's side.

LSH: the job's default banding (``--minhash-bands 16 --minhash-rows 7``);
candidates are pairs sharing a band key; a candidate is *found* when its exact
shingle Jaccard is >= 0.8 (so ``precision`` is 1.0 by construction, unless
labelled pairs below the threshold were counted). Verifying by the Jaccard
estimated from the signatures alone (128 slots: standard error about 0.035 at
0.8) is reported as ``recall_estimate_verify`` / ``precision_estimate_verify``:
it loses pairs just above 0.8 and admits pairs just below it.

* recall_all: labelled pairs found / all labelled pairs;
* ``recall`` (the headline): labelled pairs found / labelled pairs whose true
  shingle Jaccard is >= 0.8. Some edits (a suffix on a short caption, a word
  dropped from a five-word caption) really push Jaccard below the threshold; the
  index's job is to find >= 95% of the pairs at or above it;
* precision: found pairs that are labelled or have true shingle Jaccard >= 0.8 /
  all found pairs.

Last line: one JSON object (bench convention).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")  # rensa: one core, as the others

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import xxhash  # noqa: E402
from datasketch import MinHash  # noqa: E402
from shared_data import cc3m_captions  # noqa: E402

from paircurate.schemas.config import DedupConfig  # noqa: E402
from paircurate.transforms.dedup.minhash import (  # noqa: E402
    MinHasher,
    band_keys,
    candidate_pairs,
    estimated_jaccard,
    fold,
    jaccard,
    shingle_hash,
    shingles,
)

THRESHOLD = DedupConfig().caption_threshold
BANDS, ROWS = DedupConfig().minhash_bands, DedupConfig().minhash_rows
SUFFIXES = (" - stock photo", " | royalty free image", " stock image", " (photo)")
EXTRA_WORDS = ("beautiful", "old", "young", "new", "small", "big", "red", "happy", "the", "view")
EDIT_KINDS = ("case", "punctuation", "word_added", "word_dropped", "suffix")


def edit(caption: str, kind: str, rng: random.Random) -> str:
    words = caption.split()
    if kind == "case":
        return rng.choice((caption.upper(), caption.title(), caption.capitalize()))
    if kind == "punctuation":
        return rng.choice(
            (caption + " !", caption.replace(" ", ", ", 1), caption.rstrip(" .") + "...")
        )
    if kind == "word_added":
        words.insert(rng.randrange(len(words) + 1), rng.choice(EXTRA_WORDS))
        return " ".join(words)
    if kind == "word_dropped" and len(words) > 1:
        del words[rng.randrange(len(words))]
        return " ".join(words)
    return caption + rng.choice(SUFFIXES)


def labelled_corpus(
    captions: list[str], edits: int, seed: int
) -> tuple[list[str], list[tuple[int, int, str]]]:
    """Captions plus edited copies, and the labelled (original, copy, edit kind) pairs."""
    rng = random.Random(seed)
    corpus = list(captions)
    labelled = []
    for index in rng.sample(range(len(captions)), edits):
        kind = rng.choice(EDIT_KINDS)
        labelled.append((index, len(corpus), kind))
        corpus.append(edit(captions[index], kind, rng))
    return corpus, labelled


def datasketch_bulk(captions: list[str], hashfunc: Callable[[bytes], int]) -> list[MinHash]:
    return MinHash.bulk([shingles(c) for c in captions], num_perm=128, seed=1, hashfunc=hashfunc)


def shingle_texts(caption: str) -> list[str]:
    """The caption's distinct 5-grams as ``str``, the same set as :func:`shingles`."""
    folded = fold(caption)
    if len(folded) < 5:
        return [folded] if folded else []
    return list(dict.fromkeys(folded[i : i + 5] for i in range(len(folded) - 4)))


def rensa_matrix(captions: list[str]) -> object:
    from rensa import RMinHash

    return RMinHash.digest_matrix_from_token_sets([shingle_texts(c) for c in captions], 128, 1)


def speed(corpus: list[str], repeats: int) -> dict[str, list[float]]:
    """Seconds of each contender per round; the contenders alternate within a round."""
    hasher = MinHasher(num_perm=128, seed=1)
    hasher.signatures(corpus[:10])  # builds the fold table and permutations once
    contenders: dict[str, Callable[[], object]] = {
        "ours": lambda: hasher.signatures(corpus),
        "anchor": lambda: datasketch_bulk(corpus, xxhash.xxh32_intdigest),
        "rensa": lambda: rensa_matrix(corpus),
        "bulk_same_hash": lambda: datasketch_bulk(corpus, shingle_hash),
    }
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def lsh_quality(corpus: list[str], labelled: list[tuple[int, int, str]]) -> dict[str, float]:
    signatures = MinHasher(num_perm=128, seed=1).signatures(corpus)
    candidates = candidate_pairs(band_keys(signatures, bands=BANDS, rows=ROWS))
    sets = [set(shingles(c)) for c in corpus]
    true = np.array([jaccard(sets[i], sets[j]) for i, j in candidates])
    estimated = estimated_jaccard(signatures[candidates[:, 0]], signatures[candidates[:, 1]])
    labels = {(i, j) for i, j, _ in labelled}
    is_label = np.array([(int(i), int(j)) in labels for i, j in candidates], dtype=bool)
    candidate_list = [(int(i), int(j)) for i, j in candidates]
    candidate_set = set(candidate_list)
    by_estimate = estimated >= THRESHOLD
    found_est = {pair for pair, ok in zip(candidate_list, by_estimate, strict=True) if ok}
    found_exact = {pair for pair, ok in zip(candidate_list, true >= THRESHOLD, strict=True) if ok}
    label_true = {(i, j): jaccard(sets[i], sets[j]) for i, j, _ in labelled}
    above = {pair for pair, value in label_true.items() if value >= THRESHOLD}
    good = (true >= THRESHOLD) | is_label
    result = {
        "labelled_pairs": len(labels),
        "labelled_above_threshold": len(above),
        "candidates": len(candidate_set),
        "found": len(found_exact),
        "recall_candidates": len(above & candidate_set) / len(above),
        "recall_all": len(labels & found_exact) / len(labels),
        "recall": len(above & found_exact) / len(above),
        "precision": float(good[true >= THRESHOLD].mean()),
        "found_estimate_verify": len(found_est),
        "recall_all_estimate_verify": len(labels & found_est) / len(labels),
        "recall_estimate_verify": len(above & found_est) / len(above),
        "precision_estimate_verify": float(good[estimated >= THRESHOLD].mean()),
        "estimate_bias_on_candidates": float(np.mean(estimated - true)),
    }
    for kind in EDIT_KINDS:
        pairs = [(i, j) for i, j, k in labelled if k == kind]
        result[f"recall_all_{kind}"] = sum(p in found_exact for p in pairs) / max(len(pairs), 1)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--edits", type=int, default=2000, help="labelled edited copies to add")
    parser.add_argument("--seed", type=int, default=7, help="seed of the edit sample")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (medians kept)")
    args = parser.parse_args(argv)

    corpus, labelled = labelled_corpus(cc3m_captions(), args.edits, args.seed)
    seconds = speed(corpus, args.repeats)
    rates = {name: len(corpus) / statistics.median(times) for name, times in seconds.items()}
    quality = lsh_quality(corpus, labelled)

    print(f"{len(corpus)} captions ({args.edits} edited copies), 128 permutations, one core")
    for name, rate in rates.items():
        rounds = ", ".join(f"{len(corpus) / t:,.0f}" for t in seconds[name])
        print(f"  {name:<15} {rate:>10,.0f} signatures/s  ({rate / rates['anchor']:.2f}x anchor;"
              f" rounds: {rounds})")  # fmt: skip
    for name, value in quality.items():
        print(f"  {name:<32} {value:.4f}" if isinstance(value, float) else f"  {name:<32} {value}")
    summary = {
        "bench": "minhash",
        "ours": round(rates["ours"], 1),
        "unit": "signatures/s/core",
        "anchor": round(rates["anchor"], 1),
        "anchor_config": "datasketch MinHash.bulk, hashfunc=xxhash.xxh32_intdigest",
        "ratio": round(rates["ours"] / rates["anchor"], 2),
        "rensa": round(rates["rensa"], 1),
        "ratio_rensa": round(rates["ours"] / rates["rensa"], 2),
        "bulk_same_hash": round(rates["bulk_same_hash"], 1),
        "ratio_same_hash": round(rates["ours"] / rates["bulk_same_hash"], 2),
        "repeats": args.repeats,
        "lsh": f"{BANDS}x{ROWS} band keys, verified by exact shingle Jaccard >= 0.8",
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in quality.items()},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
