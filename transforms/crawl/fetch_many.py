"""Fetch a batch of pairs: download, decode, check, resize and re-encode each image.

Each attempt at a pair is handled start to finish by one thread, so the
original bytes live only until the re-encoded image exists; at most
``2 x threads`` attempts are in flight, which bounds memory whatever the batch
size. A pair whose attempt failed for a passing reason (429, 5xx, a reset)
waits for its retry in a schedule, not in a sleeping thread: a host that asks
for 30 s of quiet does not stall the threads that fetch from the others.

Downloads wait on the network and want many threads; decoding and resizing want
the CPU. Given an ``ImagePool``, each thread hands its body to the pool's
processes and waits; without one, only ``image_threads`` threads of the whole
process work on images at once (``image_slots``): more would just take turns
with the GIL and the caches (bench/download.py measures it), while the others
keep downloading. The slots belong to the process, not to one call, because a
Beam worker runs several bundles at once, each with its own ``fetch_many``: a
count per call would multiply the decoded images held at once by the bundles.
"""

from __future__ import annotations

import heapq
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from paircurate.schemas.config import ImageConfig
from paircurate.transforms.crawl.allocator import keep_image_buffers
from paircurate.transforms.crawl.download import (
    Downloader,
    DownloadResult,
    UrlAttempts,
    describe,
)
from paircurate.transforms.crawl.image_pool import ImagePool
from paircurate.transforms.crawl.images import process_image


@dataclass
class FetchResult:
    """Measurements of one pair (ledger columns) and its re-encoded image, if any."""

    uid: str
    measurements: dict[str, Any] = field(default_factory=dict)
    image: bytes | None = None

    @property
    def reason(self) -> str | None:
        return self.measurements.get("reason")


def usable_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's core count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_SLOTS: dict[int, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def image_slots(count: int) -> threading.BoundedSemaphore:
    """The process's semaphore of ``count`` image jobs (0: one per usable core), one per count.

    Every ``fetch_many`` call in the process that asks for the same count
    shares it, so concurrent bundles together stay within it.
    """
    if count < 0:
        raise ValueError(f"image slots must be 0 (one per core) or more, not {count}")
    count = count or usable_cores()
    with _SLOTS_LOCK:
        if count not in _SLOTS:
            _SLOTS[count] = threading.BoundedSemaphore(count)
        return _SLOTS[count]


@dataclass(order=True)
class _Retry:
    """A pair waiting for its next attempt, until ``due`` (time.monotonic)."""

    due: float
    uid: str = field(compare=False)
    progress: UrlAttempts = field(compare=False)


def _attempt(
    uid: str,
    progress: UrlAttempts,
    downloader: Downloader,
    image_config: ImageConfig,
    slots: threading.Semaphore,
    image_pool: ImagePool | None,
) -> FetchResult | _Retry:
    """One attempt at a pair: its result, or when to try again.

    Whatever it raises becomes the pair's own reason, so that one URL never
    costs the other pairs of its batch.
    """
    try:
        with downloader.budget.hold() as held:
            download, wait = downloader.attempt(progress, held)
            if wait is not None:
                return _Retry(time.monotonic() + wait, uid, progress)
            return _measure(uid, download, image_config, slots, image_pool)
    except Exception as error:  # noqa: BLE001 - isolation: the failure stays in its row
        failed = DownloadResult(reason="download_error", detail=describe(error))
        failed.elapsed_ms = (time.perf_counter() - progress.started) * 1000.0
        return FetchResult(uid, _download_measurements(failed))


def _measure(
    uid: str,
    download: DownloadResult,
    image_config: ImageConfig,
    slots: threading.Semaphore,
    image_pool: ImagePool | None,
) -> FetchResult:
    """The pair's result from its final download, with the image work done."""
    measured = _download_measurements(download)
    if not download.ok or download.body is None:
        return FetchResult(uid, measured)
    measured["bytes"] = len(download.body)
    if image_pool is not None:
        image = image_pool.process(download.body, image_config)
    else:
        with slots:
            image = process_image(download.body, image_config)
    measured.update(image.measurements())
    measured["reason"], measured["reason_detail"] = image.reason, image.detail
    return FetchResult(uid, measured, image.encoded if image.ok else None)


def _download_measurements(download: DownloadResult) -> dict[str, Any]:
    return {
        "http_status": download.http_status,
        "content_type": download.content_type,
        "download_ms": round(download.elapsed_ms, 3),
        "reason": download.reason,
        "reason_detail": download.detail,
    }


def fetch_many(
    pairs: Iterable[tuple[str, str]],
    downloader: Downloader,
    image_config: ImageConfig,
    threads: int,
    image_pool: ImagePool | None = None,
    image_threads: int = 0,
) -> Iterator[FetchResult]:
    """Fetch (uid, url) pairs concurrently; results come in completion order.

    Without ``image_pool``, the image work runs in the download threads, at most
    ``image_threads`` at once across the process (0: one per usable core).

    Finished attempts report themselves on a queue: one put and one get per
    attempt, where waiting on the whole window would touch every pending future
    each time. Retries wait in a heap, ordered by when they are due, and go
    back to the threads then.
    """
    if image_pool is None:
        keep_image_buffers()  # the image work runs in this process's threads
    window = 2 * threads
    slots = image_slots(image_threads)
    finished: queue.SimpleQueue[Future[FetchResult | _Retry]] = queue.SimpleQueue()
    waiting: list[_Retry] = []
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fetch") as pool:
        in_flight = 0

        def submit(uid: str, progress: UrlAttempts) -> None:
            nonlocal in_flight
            future = pool.submit(
                _attempt, uid, progress, downloader, image_config, slots, image_pool
            )
            future.add_done_callback(finished.put)
            in_flight += 1

        def next_result() -> FetchResult | None:
            """Wait for one attempt to end or one retry to fall due; a result if one ended."""
            nonlocal in_flight
            while waiting and waiting[0].due <= time.monotonic():
                retry = heapq.heappop(waiting)
                submit(retry.uid, retry.progress)
            timeout = max(0.0, waiting[0].due - time.monotonic()) if waiting else None
            try:
                outcome = finished.get(timeout=timeout)
            except queue.Empty:
                return None
            in_flight -= 1
            ended = outcome.result()
            if isinstance(ended, _Retry):
                heapq.heappush(waiting, ended)
                return None
            return ended

        for uid, url in pairs:
            submit(uid, UrlAttempts(url))
            while in_flight >= window:
                result = next_result()
                if result is not None:
                    yield result
        while in_flight or waiting:
            result = next_result()
            if result is not None:
                yield result
