"""Semantic dedup over 100,000 labelled synthetic embeddings: speed, memory, precision, recall.

Data: ``--points`` unit vectors of ``--dim`` dimensions (CLIP ViT-B-32's 512),
float16 as the Score step records them. Distinct scenes are drawn around
1,000 topic directions (cosine between two scenes of one topic about
0.6-0.9); ``--copies`` of them are near-identical copies of a seeded random
earlier scene (cosine to it 0.96-0.995, what a re-encoded, resized or
re-framed picture gets). Each copy and its scene are a labelled pair.
These vectors model an encoder that keeps distinct scenes apart, so precision
here measures the recipe (clusters, links, groups), not an encoder; what the
reference scorer's own image embeddings tell apart is measured by
``python -m paircurate.synthweb.reference_training separation``.

Both contenders work on the same k-means clusters (``train_centroids`` over
every point, ``cluster_count``'s automatic number, ``nearest_centroids``), one
core each (``OMP_NUM_THREADS=1``), alternating within each of ``--repeats``
rounds, medians kept:

* ours: ``decide_group`` per cluster, as the SemanticDedup step runs it:
  exact links by faiss's flat inner-product range search, groups by
  ``DisjointSets``, one keeper per group by the dedup keeper rule;
* anchor: the SemDeDup paper's reference recipe per cluster, in numpy: the
  full cosine matrix, its upper triangle, each point's largest similarity to
  an earlier point, and a point dropped when that is above the threshold.

Links: ours must give exactly the links of the anchor's matrix
(``links_equal``: every cluster's link set compared, pair for pair).

Quality, on the labelled pairs: a drop is correct when the pair it is a
duplicate of shows the same scene. precision = correct drops / drops; recall =
correct drops / (copies whose scene is in the data). The anchor's drop rule
(drop when an earlier point is close) is scored too, with the earliest close
point as what it duplicates.

Peak memory: each contender runs once more in a forked process; ``peak_mb`` is
that process's peak resident memory above what it started with (the points).

Last line: one JSON object (bench convention); ``ratio`` is the anchor's time
over ours (above 1: ours is faster).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from memory import peak_rss_mb, reset_peak  # noqa: E402

from paircurate.transforms.embeddings.semantic import (  # noqa: E402
    cluster_count,
    decide_group,
    link,
    nearest_centroids,
    train_centroids,
    unpack,
)

THRESHOLD = 0.95
TOPICS = 1000


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def labelled_points(points: int, copies: int, dim: int, seed: int):
    """(float16 embedding bytes per point, scene label per point, uids)."""
    rng = np.random.default_rng(seed)
    scenes = points - copies
    topics = unit(rng.normal(size=(TOPICS, dim)))
    spread = rng.uniform(0.35, 0.8, size=TOPICS)
    topic = rng.integers(0, TOPICS, size=scenes)
    noise = rng.normal(size=(scenes, dim)) * (spread[topic] / np.sqrt(dim))[:, None]
    vectors = unit(topics[topic] + noise)
    of = rng.integers(0, scenes, size=copies)
    radius = rng.uniform(0.1, 0.3, size=copies)
    moved = rng.normal(size=(copies, dim)) * (radius / np.sqrt(dim))[:, None]
    vectors = np.vstack([vectors, unit(vectors[of] + moved)]).astype(np.float16)
    labels = np.concatenate([np.arange(scenes), of])
    order = rng.permutation(points)  # copies anywhere, as in a crawl
    uids = [f"{i:032x}" for i in range(points)]
    embeddings = [vectors[i].tobytes() for i in order]
    return embeddings, labels[order], uids


def clusters_of(embeddings: list[bytes]) -> list[np.ndarray]:
    vectors = unpack(embeddings)
    centroids = train_centroids(vectors, cluster_count(len(vectors), len(vectors), 0))
    nearest = nearest_centroids(vectors, centroids)
    return [np.flatnonzero(nearest == c) for c in range(len(centroids))]


def ours(embeddings, uids, areas, members: list[np.ndarray]) -> dict[int, int]:
    """point -> the point it duplicates, for every dropped point."""
    row_of = {uid: i for i, uid in enumerate(uids)}
    dropped = {}
    for rows in members:
        points = [((uids[i], 0, int(areas[i]), 0), embeddings[i]) for i in rows]
        for decision in decide_group(points, THRESHOLD):
            if decision["duplicate_of"] is not None:
                dropped[row_of[decision["uid"]]] = row_of[decision["duplicate_of"]]
    return dropped


def anchor(embeddings, members: list[np.ndarray]) -> dict[int, int]:
    """SemDeDup's reference step per cluster: drop a point close to an earlier one."""
    vectors = unpack(embeddings)
    dropped = {}
    for rows in members:
        cluster = vectors[rows]
        similarity = np.triu(cluster @ cluster.T, k=1)
        closest = similarity.max(axis=0)
        for j in np.flatnonzero(closest > THRESHOLD):
            dropped[int(rows[j])] = int(rows[np.argmax(similarity[:, j] > THRESHOLD)])
    return dropped


def anchor_links(vectors: np.ndarray) -> list[tuple[int, int]]:
    rows, columns = np.nonzero(np.triu(vectors @ vectors.T > THRESHOLD, k=1))
    return [(int(a), int(b)) for a, b in zip(rows, columns, strict=True)]


def links_equal(embeddings, members: list[np.ndarray]) -> bool:
    vectors = unpack(embeddings)
    return all(link(vectors[rows], THRESHOLD) == anchor_links(vectors[rows]) for rows in members)


def quality(dropped: dict[int, int], labels: np.ndarray) -> tuple[float, float]:
    correct = sum(labels[a] == labels[b] for a, b in dropped.items())
    expected = len(labels) - len(set(labels.tolist()))
    return correct / max(len(dropped), 1), correct / max(expected, 1)


def _peak(queue, run, args) -> None:
    reset_peak()  # a forked process starts with its parent's high-water mark
    before = peak_rss_mb()
    run(*args)
    queue.put(peak_rss_mb() - before)


def peak_mb(run, *args) -> float:
    """Peak resident memory of one call, in a forked process, above where it started."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_peak, args=(queue, run, args))
    process.start()
    value = queue.get()
    process.join()
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--copies", type=int, default=10_000, help="labelled near-identical copies")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (medians kept)")
    args = parser.parse_args(argv)

    embeddings, labels, uids = labelled_points(args.points, args.copies, args.dim, args.seed)
    areas = np.random.default_rng(args.seed + 1).integers(10_000, 1_000_000, size=args.points)
    started = time.perf_counter()
    members = clusters_of(embeddings)
    kmeans_s = time.perf_counter() - started
    sizes = sorted(len(rows) for rows in members)
    seconds: dict[str, list[float]] = {"ours": [], "anchor": []}
    for _ in range(args.repeats):
        for name in ("ours", "anchor"):
            started = time.perf_counter()
            if name == "ours":
                found = ours(embeddings, uids, areas, members)
            else:
                found_anchor = anchor(embeddings, members)
            seconds[name].append(time.perf_counter() - started)
    median = {name: statistics.median(times) for name, times in seconds.items()}
    precision, recall = quality(found, labels)
    anchor_precision, anchor_recall = quality(found_anchor, labels)
    equal = links_equal(embeddings, members)
    memory = {
        "ours": peak_mb(ours, embeddings, uids, areas, members),
        "anchor": peak_mb(anchor, embeddings, members),
    }

    print(f"{args.points} points ({args.copies} labelled copies), dim {args.dim}, one core")
    print(f"  k-means: {len(members)} clusters ({sizes[0]}-{sizes[-1]} points), {kmeans_s:.1f} s")
    for name in ("ours", "anchor"):
        rounds = ", ".join(f"{t:.2f}" for t in seconds[name])
        print(f"  {name:<7} {median[name]:7.2f} s  peak +{memory[name]:.0f} MB  (rounds: {rounds})")
    print(f"  ours:   precision {precision:.4f} recall {recall:.4f} ({len(found)} dropped)")
    print(f"  anchor: precision {anchor_precision:.4f} recall {anchor_recall:.4f}")
    print(f"  links equal to the anchor's on every cluster: {equal}")
    summary = {
        "bench": "semdedup",
        "points": args.points,
        "copies": args.copies,
        "dim": args.dim,
        "threshold": THRESHOLD,
        "clusters": len(members),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "seconds": round(median["ours"], 3),
        "peak_mb": round(memory["ours"], 1),
        "anchor": "SemDeDup reference: numpy all-pairs cosine per k-means cluster",
        "anchor_seconds": round(median["anchor"], 3),
        "anchor_peak_mb": round(memory["anchor"], 1),
        "anchor_precision": round(anchor_precision, 4),
        "anchor_recall": round(anchor_recall, 4),
        "links_equal": equal,
        "kmeans_seconds": round(kmeans_s, 2),
        "ratio": round(median["anchor"] / median["ours"], 2),
        "repeats": args.repeats,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
