"""Let a process that decodes images reuse the memory of the last image for the next.

glibc hands an allocation larger than its mmap threshold (128 KiB at first,
then raised as large blocks are freed) a mapping of its own and unmaps it on
free, and it gives free memory at the top of a heap back to the kernel once
more than its trim threshold lies there. A decoded web photo takes megabytes,
so in an image worker every image pages in fresh zeroed memory (about a
hundred page faults) and returns it again: kernel time on every image, and
more in a process with many threads, where each unmapping interrupts the
cores its other threads run on.

``keep_image_buffers`` fixes both thresholds at 32 MiB (glibc's ceiling for
the mmap one), so freed image buffers stay in the heap for the next image.
Both are needed: setting one alone turns off glibc's adjustment of the other
and faults more than before. Each of glibc's heaps (arenas; by default up to
eight per core, one taken by each busy thread) may then keep that much free,
so the arenas are capped at two (the cap pipeline/memory.py gives every Fetch
worker, through ``glibc_mallopt`` here): a few large allocations per image
contend little for them. A process whose environment already sets a threshold
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``) keeps its own
thresholds, one that sets ``MALLOC_ARENA_MAX`` its own arenas, and other C
libraries are left as they are.
"""

from __future__ import annotations

import ctypes
import os
import threading

MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 32 * 2**20
ARENAS = 2
# glibc's malloc.h
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
_THRESHOLD_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
_ARENA_ENVIRONMENT = "MALLOC_ARENA_MAX"

_lock = threading.Lock()
_set_in: int | None = None  # the pid of the process that set them


def keep_image_buffers() -> bool:
    """Set glibc's thresholds (and arena cap) in this process, once; whether the thresholds are set.

    What the environment sets already is left as it is: the two thresholds
    together, since one alone does harm, and the arena cap on its own.
    """
    global _set_in
    with _lock:
        if _set_in == os.getpid():
            return True
        if not _glibc():
            return False  # musl, macOS and others: their mallopt is not glibc's
        if any(name in os.environ for name in _THRESHOLD_ENVIRONMENT):
            return False
        settings = [(_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD)]
        if not environment_sets_arenas():
            settings.insert(0, (M_ARENA_MAX, ARENAS))
        mallopt = glibc_mallopt()
        if not all(mallopt(option, value) == 1 for option, value in settings):
            return False
        _set_in = os.getpid()
        return True


def environment_sets_arenas() -> bool:
    """Whether the process's environment chose glibc's arena cap (``MALLOC_ARENA_MAX``)."""
    return _ARENA_ENVIRONMENT in os.environ


def glibc_mallopt():
    """glibc's ``mallopt``, typed; raises AttributeError where the C library has none."""
    function = ctypes.CDLL(None).mallopt
    function.argtypes, function.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return function


def _glibc() -> bool:
    """Whether this process runs on glibc (only glibc knows the name)."""
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):  # a C library that does not know the name
        return False
