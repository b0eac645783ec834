"""Keep a worker's resident memory flat while many threads decode images.

glibc gives each thread that allocates its own malloc arena (up to 8 per core),
and freed decode buffers stay mapped inside the arena that held them: with 32
download threads, resident memory creeps up chunk after chunk. Two arenas hold
the same work with a fraction of the retained memory. The cap applies to arenas
created after it is set, so the driver sets it before the local runner starts
its threads and each Fetch worker in its ``setup``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # from glibc's malloc.h
_limited = False


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for threads started from now on; a no-op elsewhere."""
    global _limited
    if _limited:
        return True
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        _limited = bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False
    log.debug("malloc arenas capped at %d: %s", arenas, _limited)
    return _limited
