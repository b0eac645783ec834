"""Objects that every DoFn instance of one job shares within a worker process.

A runner may run several bundles of the Fetch step at once in one worker
process, each in a DoFn instance of its own. What bounds the worker (the
body bytes in flight, the requests to one host, the robots.txt and TDMRep
answers fetched once per host) must then belong to the process, or each
instance multiplies it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedByKey(Generic[T]):
    """One object per key, made by the first ``acquire`` and closed by the last ``release``."""

    def __init__(self, close: Callable[[T], None]):
        self._close = close
        self._lock = threading.Lock()
        self._held: dict[Hashable, tuple[T, int]] = {}

    def acquire(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            value, users = self._held.get(key) or (make(), 0)
            self._held[key] = (value, users + 1)
            return value

    def release(self, key: Hashable) -> None:
        with self._lock:
            value, users = self._held[key]
            if users > 1:
                self._held[key] = (value, users - 1)
                return
            del self._held[key]
        self._close(value)

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)
