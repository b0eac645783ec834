"""The image pool: the same results as in-thread processing, and a crashed decoder as a reason."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from paircurate.schemas.config import ImageConfig
from paircurate.transforms.crawl.image_pool import ImagePool, shared_image_pool
from paircurate.transforms.crawl.images import process_image

from ..helpers import BLUE, CRASH_MARKER, HANG_MARKER, image_bytes, process_or_crash

CONFIG = ImageConfig(image_size=32, resize_mode="border", encode_format="jpg")
BODIES = [
    image_bytes(64, 48, "PNG"),
    image_bytes(48, 96, "JPEG", BLUE),
    image_bytes(40, 40, "WEBP"),
    b"<!doctype html>",
    image_bytes(8, 8, "PNG"),
]


@pytest.fixture(scope="module")
def pool() -> Iterator[ImagePool]:
    pool = ImagePool(2, work=process_or_crash)
    yield pool
    pool.close()


def test_results_equal_processing_in_this_process(pool: ImagePool) -> None:
    small = ImageConfig(image_size=32, resize_mode="border", encode_format="jpg", min_image_size=16)
    for config in (CONFIG, small):
        with ThreadPoolExecutor(4) as threads:
            pooled = list(threads.map(pool.process, BODIES, [config] * len(BODIES)))
        assert pooled == [process_image(body, config) for body in BODIES]
    assert [r.reason for r in pooled] == [None, None, None, "image_decode_error", "image_too_small"]


def test_each_image_gets_its_own_config_when_configs_interleave(pool: ImagePool) -> None:
    # A process keeps the last config it was sent: a change must reach it before its image.
    small = ImageConfig(image_size=16, resize_mode="center_crop", encode_format="png")
    configs = [CONFIG, small, small, CONFIG, CONFIG, small] * 2
    bodies = [BODIES[i % 3] for i in range(len(configs))]
    with ThreadPoolExecutor(3) as threads:
        pooled = list(threads.map(pool.process, bodies, configs))
    assert pooled == [process_image(b, c) for b, c in zip(bodies, configs, strict=True)]
    assert {r.width for r in pooled} == {16, 32}


def test_a_decoder_that_dies_becomes_a_reason_and_the_pool_recovers(pool: ImagePool) -> None:
    crashed = pool.process(CRASH_MARKER + b" twice", CONFIG)
    assert crashed.reason == "image_decode_error"
    assert "process died" in crashed.detail
    assert crashed.sha256 == process_image(CRASH_MARKER + b" twice", CONFIG).sha256
    assert pool.process(BODIES[0], CONFIG) == process_image(BODIES[0], CONFIG)


def test_images_in_flight_beside_a_crash_are_not_harmed(pool: ImagePool) -> None:
    bodies = BODIES[:3] * 4 + [CRASH_MARKER]
    with ThreadPoolExecutor(8) as threads:
        results = list(threads.map(lambda body: pool.process(body, CONFIG), bodies))
    assert results[:-1] == [process_image(body, CONFIG) for body in bodies[:-1]]
    assert results[-1].reason == "image_decode_error"


def test_an_image_that_never_finishes_is_a_reason_and_its_process_is_replaced() -> None:
    # Long enough for the replacement process to start and import on a busy machine.
    pool = ImagePool(1, work=process_or_crash, timeout=3)
    try:
        stuck_pid = pool.pids[0]
        hung = pool.process(HANG_MARKER, CONFIG)
        assert (hung.reason, hung.detail) == (
            "image_decode_error",
            "the image work took longer than 3 s",
        )
        assert pool.pids != [stuck_pid]
        assert pool.process(BODIES[0], CONFIG) == process_image(BODIES[0], CONFIG)
    finally:
        pool.close()


def test_a_killed_process_is_replaced_without_losing_the_image() -> None:
    pool = ImagePool(1)
    try:
        assert pool.process(BODIES[0], CONFIG).ok
        for pid in pool.pids:  # a process killed from outside (the OOM killer)
            os.kill(pid, signal.SIGKILL)
        assert pool.process(BODIES[1], CONFIG) == process_image(BODIES[1], CONFIG)
    finally:
        pool.close()


def test_the_shared_pool_is_one_per_size() -> None:
    assert shared_image_pool(1) is shared_image_pool(1)
    assert shared_image_pool(1) is not shared_image_pool(2)


def test_a_pool_needs_a_process() -> None:
    with pytest.raises(ValueError, match="at least one process"):
        ImagePool(0)
