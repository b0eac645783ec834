"""The allocator setting: image work stops paging memory in and out, and a user's choice stands."""

from __future__ import annotations

import multiprocessing
import resource

import pytest

from paircurate.transforms.crawl import allocator

from ..helpers import image_bytes

# Web-photo sizes in the formats that decode to fresh buffers of megabytes.
SIZES = [(1400, 1000), (900, 600), (1200, 800), (640, 480), (1000, 1400), (800, 800)]
ENVIRONMENT = (*allocator._THRESHOLD_ENVIRONMENT, allocator._ARENA_ENVIRONMENT)


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
def test_image_work_reuses_freed_buffers_instead_of_faulting_them_in(monkeypatch) -> None:
    for name in ENVIRONMENT:  # the spawned processes take this environment
        monkeypatch.delenv(name, raising=False)
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        default, kept = pool.map(_faults_of_image_work, [False, True], chunksize=1)
    assert default > 1000  # every pass pages its image buffers in again
    assert kept < default / 10


@pytest.fixture
def calls(monkeypatch) -> list[tuple[int, int]]:
    """The mallopt calls keep_image_buffers makes, in a process where it has not run."""
    made: list[tuple[int, int]] = []

    def mallopt(option: int, value: int) -> int:
        made.append((option, value))
        return 1

    monkeypatch.setattr(allocator, "_set_in", None)
    monkeypatch.setattr(allocator, "_glibc", lambda: True)
    monkeypatch.setattr(allocator, "glibc_mallopt", lambda: mallopt)
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return made


THRESHOLDS = [
    (allocator._M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD),
    (allocator._M_TRIM_THRESHOLD, allocator.TRIM_THRESHOLD),
]
ARENA_CAP = (allocator.M_ARENA_MAX, allocator.ARENAS)


def test_sets_both_thresholds_and_the_arena_cap_once(calls) -> None:
    assert allocator.keep_image_buffers()
    assert allocator.keep_image_buffers()
    assert calls == [ARENA_CAP, *THRESHOLDS]


def test_an_arena_cap_from_the_environment_is_left_alone(calls, monkeypatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert allocator.keep_image_buffers()
    assert calls == THRESHOLDS


@pytest.mark.parametrize("name", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"])
def test_a_threshold_from_the_environment_leaves_both_alone(calls, monkeypatch, name) -> None:
    monkeypatch.setenv(name, "131072")
    assert not allocator.keep_image_buffers()
    assert calls == []


def test_other_c_libraries_are_left_alone(calls, monkeypatch) -> None:
    monkeypatch.setattr(allocator, "_glibc", lambda: False)
    assert not allocator.keep_image_buffers()
    assert calls == []


def test_a_refused_setting_is_not_taken_as_set(calls, monkeypatch) -> None:
    monkeypatch.setattr(allocator, "glibc_mallopt", lambda: lambda option, value: 0)
    assert not allocator.keep_image_buffers()
    assert allocator._set_in is None
