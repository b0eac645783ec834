"""The allocator setting: image work stops paging memory in and out, and a user's choice stands."""

from __future__ import annotations

import multiprocessing
import os
import resource

import pytest

from paircurate.transforms.crawl import allocator

from ..helpers import image_bytes

# Web-photo sizes in the formats that decode to fresh buffers of megabytes.
SIZES = [(1400, 1000), (900, 600), (1200, 800), (640, 480), (1000, 1400), (800, 800)]


def _faults_of_image_work(keep: bool) -> int:
    """Page faults of a second pass over the images, in a fresh process."""
    from paircurate.schemas.config import ImageConfig
    from paircurate.transforms.crawl.images import process_image

    if keep:
        assert allocator.keep_image_buffers()
    config = ImageConfig(image_size=256, resize_mode="border", encode_format="jpg")
    bodies = [image_bytes(w, h, fmt) for w, h in SIZES for fmt in ("JPEG", "PNG", "WEBP")]
    for body in bodies:  # the first pass grows the heap
        assert process_image(body, config).ok
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        for body in bodies:
            process_image(body, config)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not allocator._glibc(), reason="the setting is glibc's")
def test_image_work_reuses_freed_buffers_instead_of_faulting_them_in() -> None:
    context = multiprocessing.get_context("spawn")
    clean = {name: os.environ.pop(name) for name in allocator._ENVIRONMENT if name in os.environ}
    try:
        with context.Pool(1, maxtasksperchild=1) as pool:
            default, kept = pool.map(_faults_of_image_work, [False, True], chunksize=1)
    finally:
        os.environ.update(clean)
    assert default > 1000  # every pass pages its image buffers in again
    assert kept < default / 10


def test_a_threshold_from_the_environment_is_left_alone(monkeypatch) -> None:
    monkeypatch.setattr(allocator, "_set_in", None)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert not allocator.keep_image_buffers()


def test_other_c_libraries_are_left_alone(monkeypatch) -> None:
    monkeypatch.setattr(allocator, "_set_in", None)
    monkeypatch.setattr(allocator, "_glibc", lambda: False)
    for name in allocator._ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert not allocator.keep_image_buffers()
