"""Fetch a batch of pairs: download, decode, check, resize and re-encode each image.

Each pair is handled start to finish by one thread, so the original bytes live
only until the re-encoded image exists; at most ``2 x threads`` pairs are in
flight, which bounds memory whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from paircurate.schemas.config import ImageConfig
from paircurate.transforms.download import Downloader
from paircurate.transforms.images import process_image


@dataclass
class FetchResult:
    """Measurements of one pair (ledger columns) and its re-encoded image, if any."""

    uid: str
    measurements: dict[str, Any] = field(default_factory=dict)
    image: bytes | None = None

    @property
    def reason(self) -> str | None:
        return self.measurements.get("reason")


def fetch_one(uid: str, url: str, downloader: Downloader, image_config: ImageConfig) -> FetchResult:
    download = downloader.fetch(url)
    measured: dict[str, Any] = {
        "http_status": download.http_status,
        "content_type": download.content_type,
        "download_ms": round(download.elapsed_ms, 3),
        "reason": download.reason,
        "reason_detail": download.detail,
    }
    if not download.ok or download.body is None:
        return FetchResult(uid, measured)
    measured["bytes"] = len(download.body)
    image = process_image(download.body, image_config)
    measured.update(image.measurements())
    measured["reason"], measured["reason_detail"] = image.reason, image.detail
    return FetchResult(uid, measured, image.encoded if image.ok else None)


def fetch_many(
    pairs: Iterable[tuple[str, str]],
    downloader: Downloader,
    image_config: ImageConfig,
    threads: int,
) -> Iterator[FetchResult]:
    """Fetch (uid, url) pairs concurrently; results come in completion order."""
    window = 2 * threads
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fetch") as pool:
        pending: set[Future[FetchResult]] = set()
        for uid, url in pairs:
            pending.add(pool.submit(fetch_one, uid, url, downloader, image_config))
            if len(pending) >= window:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in done)
        for future in pending:
            yield future.result()
