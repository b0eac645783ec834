"""Keep a worker's resident memory flat while many threads decode images.

glibc gives each thread that allocates its own malloc arena (up to 8 per core),
and freed decode buffers stay mapped inside the arena that held them: with 32
download threads, resident memory creeps up chunk after chunk. Two arenas hold
the same work with a fraction of the retained memory. The cap applies to arenas
created after it is set, so the driver sets it before the local runner starts
its threads and each Fetch worker in its ``setup``.

A process whose environment sets ``MALLOC_ARENA_MAX`` keeps that value, as
docs/downloading.md promises: glibc has read it at start-up, and a cap set
here would replace it.
"""

from __future__ import annotations

import logging

from paircurate.transforms.crawl.allocator import (
    ARENAS,
    M_ARENA_MAX,
    environment_sets_arenas,
    glibc_mallopt,
)

log = logging.getLogger(__name__)

_limited = False


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for threads started from now on; whether this call's cap holds.

    False, and nothing changed, where the environment sets ``MALLOC_ARENA_MAX``;
    False where the C library has no ``mallopt`` or refuses the setting.
    """
    global _limited
    if _limited:
        return True
    if environment_sets_arenas():
        log.debug("malloc arenas left as MALLOC_ARENA_MAX sets them")
        return False
    try:
        _limited = glibc_mallopt()(M_ARENA_MAX, arenas) == 1
    except (OSError, AttributeError):
        return False
    log.debug("malloc arenas capped at %d: %s", arenas, _limited)
    return _limited
