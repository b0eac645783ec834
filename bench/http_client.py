"""Our connection pool over http.client against urllib3's pool manager, on the same requests.

transforms/crawl/connections.py keeps idle ``http.client`` connections per
origin for the downloader, where it used urllib3's ``PoolManager``. This
measures the choice in the download path's own shape: ``--threads`` threads
fetching ``--requests`` URLs from bench/download.py's image host (the same
images, 20-50 ms of latency each), the body read in 64 KiB blocks, as the
downloader reads it. The contenders:

- ours: ``ConnectionPool.get`` and ``Response.read1``, then ``finish()``,
  each request under its own ``Deadline``;
- anchor: urllib3 as the downloader configured it (no retries, no redirects
  followed, no content decoding, ``read1`` blocks), then ``release_conn()``.
  Both are handed the same pre-parsed target: ours an ``Origin`` and a path,
  urllib3 the ``HTTPConnectionPool`` of that origin and the same path, so
  that neither parses a whole URL per request (urllib3's ``PoolManager``
  would, for about 6 % of its cost);
- ``downloader``: our whole ``Downloader.attempt`` (URL checks, site rules,
  per-host cap, byte budget and cap), for scale.

Each is timed by the CPU (user + system) of this process per request, median
of ``--rounds`` rounds, the contenders alternating within each round.

    python bench/http_client.py --requests 3000 --threads 32 --rounds 5

Last line: one JSON object (bench convention); ``ratio`` = the anchor's CPU
per request / ours.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from download import distinct_images, start_host  # noqa: E402

from paircurate.schemas.config import DownloadConfig  # noqa: E402
from paircurate.transforms.crawl.connections import ConnectionPool, Deadline, Origin  # noqa: E402
from paircurate.transforms.crawl.download import Downloader, UrlAttempts  # noqa: E402

BLOCK = 1 << 16
HEADERS = {"User-Agent": "paircurate-bench", "Accept": "image/*", "Accept-Encoding": "identity"}


def ours(port: int, threads: int):
    pool = ConnectionPool(lambda host, _port: (host,), threads, 64, HEADERS)
    origin = Origin("http", "127.0.0.1", port)

    def fetch(target: str) -> int:
        response = pool.get(origin, target, Deadline(30.0, 10.0), 5.0)
        size = 0
        while block := response.read1(BLOCK):
            size += len(block)
        response.finish()
        return size

    return fetch, pool.close


def anchor(port: int, threads: int):
    manager = urllib3.PoolManager(
        num_pools=64, maxsize=threads, block=False, retries=False, headers=HEADERS
    )
    pool = manager.connection_from_host("127.0.0.1", port, scheme="http")
    timeout = urllib3.Timeout(connect=5.0, read=10.0)

    def fetch(target: str) -> int:
        response = pool.urlopen(
            "GET", target, headers=HEADERS, preload_content=False, decode_content=False,
            redirect=False, timeout=timeout,
        )  # fmt: skip
        size = 0
        while block := response.read1(BLOCK, decode_content=False):
            size += len(block)
        response.release_conn()
        return size

    return fetch, manager.clear


def downloader(port: int, threads: int):
    config = DownloadConfig(
        download_threads=threads, max_per_host=threads, allow_private_networks=True
    )
    running = Downloader(config)

    def fetch(target: str) -> int:
        with running.budget.hold() as held:
            result, _ = running.attempt(UrlAttempts(f"http://127.0.0.1:{port}{target}"), held)
        return len(result.body or b"")

    return fetch, running.close


CONTENDERS = {"ours": ours, "anchor": anchor, "downloader": downloader}


def cpu_ms_per_request(make, port: int, targets: list[str], threads: int) -> tuple[float, int]:
    fetch, close = make(port, threads)
    fetch(targets[0])  # connections and caches warm
    before = os.times()
    with ThreadPoolExecutor(threads) as workers:
        sizes = list(workers.map(fetch, targets))
    after = os.times()
    close()
    spent = (after.user - before.user) + (after.system - before.system)
    return 1000 * spent / len(targets), sum(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--distinct", type=int, default=1000)
    args = parser.parse_args()
    host, port = start_host(distinct_images(args.distinct))
    targets = [f"/img?n={n}" for n in range(args.requests)]
    spent: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    try:
        for round_ in range(args.rounds):
            read = set()
            for name, make in CONTENDERS.items():
                ms, size = cpu_ms_per_request(make, port, targets, args.threads)
                spent[name].append(ms)
                read.add(size)
            if len(read) != 1:
                raise SystemExit(f"the contenders read different bytes: {sorted(read)}")
            print(f"round {round_ + 1}: " + ", ".join(
                f"{name} {values[-1]:.3f} ms" for name, values in spent.items()
            ), flush=True)  # fmt: skip
    finally:
        host.kill()
    median = {name: statistics.median(values) for name, values in spent.items()}
    print(json.dumps({
        "bench": "http_client", "unit": "CPU ms per request",
        "ours": round(median["ours"], 3), "anchor": round(median["anchor"], 3),
        "ratio": round(median["anchor"] / median["ours"], 3),
        "downloader": round(median["downloader"], 3),
        "ours_config": "ConnectionPool with the http1.py reader",
        "anchor_config": "urllib3 HTTPConnectionPool of the origin, as the downloader had it",
        "requests": args.requests, "threads": args.threads, "rounds": args.rounds,
        "cores": len(os.sched_getaffinity(0)),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
