"""The search index (transforms/embeddings/index.py) against exact search, and usearch's HNSW.

Data: synthetic unit vectors of dimension 512 (ViT-B-32's embedding width) with
cluster structure: 2,000 random centres, each vector a centre plus Gaussian
noise (cosine to its centre about 0.7), written as a run folder of float16
shards of 10,000 rows (DIR/embeddings/img_emb/img_emb_NNNNN.npy, what
--write-embeddings writes). Queries: 1,000 fresh vectors of the same
distribution, not in the index. Everything runs on one core
(OMP_NUM_THREADS=1, faiss and usearch told one thread).

Contenders, at each size of ``--sizes``:

* ours: ``build_index`` (IVF trained on a 100,000-vector sample, shard by shard,
  merged on disk; ``cluster_count`` lists, ``--probes`` visited), then
  ``SearchIndex.search`` of all queries in one call;
* anchor: exact search in numpy, its best configuration: all vectors in memory
  as one float32 matrix, queries in blocks of 100 as one matrix product each,
  ``argpartition`` for the top 10;
* usearch (the alternative considered): one HNSW index (cosine, f16 storage,
  default connectivity and expansions), every shard added to it in memory;
  skipped above ``--usearch-max`` vectors, where its one-core build takes far
  longer than the others (``--usearch-max 0`` runs it at every size).

Build seconds and peak memory of each build are measured in a fresh process
of its own: ``peak_mb`` is the resident high-water mark (VmHWM), which
counts the pages of memory-mapped files that faiss's on-disk merge touches
(page cache the kernel can drop), ``anon_mb`` the peak of anonymous memory
(heap and arrays), sampled every 20 ms. Query speed is the median over ``--repeats`` rounds, the
contenders alternating within a round. recall@10 is against the anchor's
exact top 10. ``ratio`` = our queries per second / the anchor's, at the
largest size. Last line: one JSON object (bench convention).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from memory import peak_rss_mb  # noqa: E402

DIM = 512
SHARD_ROWS = 10_000
CENTRES = 2_000
NOISE = 1.0  # per-coordinate noise in units of a centre coordinate's spread
QUERIES = 1_000
K = 10
SEED = 7


def centres() -> np.ndarray:
    return np.random.default_rng(SEED).normal(size=(CENTRES, DIM)).astype(np.float32)


def draw(rows: int, seed: int, points: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = points[rng.integers(len(points), size=rows)]
    vectors = vectors + NOISE * rng.normal(size=(rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def write_run(folder: Path, size: int) -> None:
    """A run folder of ``size`` float16 embeddings in shards of SHARD_ROWS."""
    target = folder / "embeddings" / "img_emb"
    target.mkdir(parents=True)
    points = centres()
    for shard, start in enumerate(range(0, size, SHARD_ROWS)):
        rows = min(SHARD_ROWS, size - start)
        vectors = draw(rows, SEED + 1 + shard, points).astype(np.float16)
        np.save(target / f"img_emb_{shard:05d}.npy", vectors)


def queries() -> np.ndarray:
    return draw(QUERIES, SEED - 1, centres())


def shard_paths(run: Path) -> list[Path]:
    return sorted((run / "embeddings" / "img_emb").glob("img_emb_*.npy"))


def peak_mb() -> float:
    """Peak resident memory, memory-mapped file pages (faiss's on-disk lists) included."""
    return peak_rss_mb()


class AnonymousPeak:
    """Peak anonymous memory (heap, arrays; no file pages), sampled from /proc every 20 ms."""

    def __init__(self) -> None:
        self.peak_kb, self.done = 0, threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.done.wait(0.02):
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("RssAnon:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        return self.peak_kb / 1024


# --- builds, each in a process of its own -------------------------------------------------


def build_ours(run: str, folder: str, probes: int) -> dict:
    import faiss

    from paircurate.pipeline import filesystem as fs
    from paircurate.transforms.embeddings.index import IndexConfig, build_index
    from paircurate.transforms.output.store import OutputLayout

    faiss.omp_set_num_threads(1)
    started = time.perf_counter()
    info = build_index(OutputLayout(fs.FILES, run), folder, None, IndexConfig(probes=probes))
    return {"build_s": time.perf_counter() - started, "peak_mb": peak_mb(), "index": info["index"]}


def build_usearch(run: str, folder: str, probes: int) -> dict:
    from usearch.index import Index

    started = time.perf_counter()
    index = Index(ndim=DIM, metric="cos", dtype="f16")
    offset = 0
    for path in shard_paths(Path(run)):
        vectors = np.load(path).astype(np.float32)
        keys = np.arange(offset, offset + len(vectors), dtype=np.uint64)
        index.add(keys, vectors, threads=1)
        offset += len(vectors)
    index.save(os.path.join(folder, "usearch.index"))
    return {"build_s": time.perf_counter() - started, "peak_mb": peak_mb(), "index": "HNSW f16"}


def load_exact(run: str, folder: str, probes: int) -> dict:
    """The anchor's 'build': every vector into one float32 matrix (saved for the queries)."""
    started = time.perf_counter()
    matrix = np.concatenate([np.load(path).astype(np.float32) for path in shard_paths(Path(run))])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    seconds = time.perf_counter() - started
    np.save(os.path.join(folder, "exact.npy"), matrix)
    return {"build_s": seconds, "peak_mb": peak_mb(), "index": "float32 matrix"}


BUILDS = {"ours": build_ours, "usearch": build_usearch, "anchor": load_exact}


def _child(name: str, args: tuple, results) -> None:
    watch = AnonymousPeak()
    result = BUILDS[name](*args)
    results.put({**result, "anon_mb": watch.stop()})


def build_apart(name: str, run: Path, folder: Path, probes: int) -> dict:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_child, args=(name, (str(run), str(folder), probes), results))
    child.start()
    result = results.get()
    child.join()
    return result


# --- queries --------------------------------------------------------------------------------


def exact_search(matrix: np.ndarray, asked: np.ndarray, block: int = 100) -> np.ndarray:
    found = []
    for start in range(0, len(asked), block):
        scores = asked[start : start + block] @ matrix.T
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        found.append(np.take_along_axis(top, order, 1))
    return np.concatenate(found)


def ids_of_ours(ids: np.ndarray) -> np.ndarray:
    """Our ids (shard << 32 | row) as global row numbers, as the anchor counts them."""
    from paircurate.transforms.embeddings.index import ROW_BITS

    return (ids >> ROW_BITS) * SHARD_ROWS + (ids & ((1 << ROW_BITS) - 1))


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact, strict=True)]))


def measure(size: int, args: argparse.Namespace, scratch: Path) -> dict:
    import faiss

    from paircurate.transforms.embeddings.index import SearchIndex

    faiss.omp_set_num_threads(1)
    run = scratch / f"run-{size}"
    write_run(run, size)
    names = ["anchor", "ours"]
    if not args.usearch_max or size <= args.usearch_max:
        names.append("usearch")
    builds = {}
    for name in names:
        folder = scratch / f"{name}-{size}"
        folder.mkdir()
        builds[name] = [build_apart(name, run, folder, args.probes) for _ in range(args.builds)]
        print(f"{size:>9,} {name:<8} build {[round(b['build_s'], 1) for b in builds[name]]} s, "
              f"peak {builds[name][0]['peak_mb']:,.0f} MB resident, "
              f"{builds[name][0]['anon_mb']:,.0f} MB anonymous", flush=True)  # fmt: skip
    asked = queries()
    matrix = np.load(scratch / f"anchor-{size}" / "exact.npy", mmap_mode=None)
    ours = SearchIndex(str(scratch / f"ours-{size}"))
    searches = {
        "anchor": lambda: exact_search(matrix, asked),
        "ours": lambda: ids_of_ours(ours.search(asked, K)[1]),
    }
    if "usearch" in names:
        from usearch.index import Index

        hnsw = Index.restore(str(scratch / f"usearch-{size}" / "usearch.index"))
        searches["usearch"] = lambda: hnsw.search(asked, K, threads=1).keys.astype(np.int64)
    seconds: dict[str, list[float]] = {name: [] for name in searches}
    found = {}
    for _ in range(args.repeats):
        for name, search in searches.items():
            started = time.perf_counter()
            found[name] = search()
            seconds[name].append(time.perf_counter() - started)
    qps = {name: QUERIES / statistics.median(values) for name, values in seconds.items()}
    result = {"size": size}
    for name in searches:
        result[name] = {
            "qps": round(qps[name], 1),
            "recall": round(recall(found[name], found["anchor"]), 4),
            "build_s": round(statistics.median(b["build_s"] for b in builds[name]), 2),
            "peak_mb": round(max(b["peak_mb"] for b in builds[name]), 1),
            "anon_mb": round(max(b["anon_mb"] for b in builds[name]), 1),
        }
        print(f"{size:>9,} {name:<8} {qps[name]:>10,.1f} queries/s  recall@10 "
              f"{result[name]['recall']:.4f}", flush=True)  # fmt: skip
    shutil.rmtree(run)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="vectors indexed, by commas")
    parser.add_argument("--repeats", type=int, default=5, help="query rounds (median kept)")
    parser.add_argument("--builds", type=int, default=1, help="builds per contender (median kept)")
    parser.add_argument("--probes", type=int, default=32, help="inverted lists a query visits")
    parser.add_argument("--usearch-max", type=int, default=100_000, help="0: usearch at every size")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-search-") as scratch:
        results = [measure(size, args, Path(scratch)) for size in sizes]
    largest = results[-1]
    summary = {
        "bench": "search",
        "size": largest["size"],
        "recall": largest["ours"]["recall"],
        "ratio": round(largest["ours"]["qps"] / largest["anchor"]["qps"], 2),
        "qps": largest["ours"]["qps"],
        "anchor_qps": largest["anchor"]["qps"],
        "build_s": largest["ours"]["build_s"],
        "peak_mb": largest["ours"]["peak_mb"],
        "anchor_peak_mb": largest["anchor"]["peak_mb"],
        "anon_mb": largest["ours"]["anon_mb"],
        "anchor_anon_mb": largest["anchor"]["anon_mb"],
        "probes": args.probes,
        "repeats": args.repeats,
        "sizes": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
