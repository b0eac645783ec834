"""A worker's budget of response-body bytes held at once, across its download threads.

Each thread holds one body from its first byte until the image work on it is
done, so memory grows with threads x body size; a few threads meeting large
images at once would spike it. New downloads wait while the bytes held reach
the cap. A body already being read is not stopped at the cap (``--max-bytes``
bounds each one), which is what keeps the budget free of deadlocks: a thread
waits only before its request, holding nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class BodyBudget:
    """Counts the bytes every ``Held`` reports; ``hold()`` waits while they reach ``cap``."""

    def __init__(self, cap: int):
        if cap < 1:
            raise ValueError("a byte budget needs a cap of at least 1 byte")
        self.cap = cap
        self.used = 0
        self.peak = 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self) -> Iterator[Held]:
        """A slot for one body; it counts one byte until the body reports its size."""
        with self._changed:
            while self.used >= self.cap:
                self._changed.wait()
        held = Held(self)
        held.set(1)
        try:
            yield held
        finally:
            held.set(0)

    def _change(self, delta: int) -> None:
        with self._changed:
            self.used += delta
            self.peak = max(self.peak, self.used)
            if delta < 0:
                self._changed.notify_all()


class Held:
    """The bytes one body holds, as its download reads it."""

    def __init__(self, budget: BodyBudget):
        self.budget = budget
        self.size = 0

    def set(self, size: int) -> None:
        delta, self.size = size - self.size, size
        if delta:
            self.budget._change(delta)
