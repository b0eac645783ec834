"""SharedByKey: one object per key for a process, closed when its last user gives it back."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from paircurate.transforms.crawl.shared import SharedByKey


class Thing:
    made = 0

    def __init__(self) -> None:
        Thing.made += 1
        self.closed = False


def close(thing: Thing) -> None:
    thing.closed = True


def test_users_of_one_key_share_one_object_until_the_last_gives_it_back() -> None:
    shared: SharedByKey[Thing] = SharedByKey(close)
    first = shared.acquire("job-a", Thing)
    second = shared.acquire("job-a", Thing)
    other = shared.acquire("job-b", Thing)
    assert first is second and first is not other
    shared.release("job-a")
    assert not first.closed and len(shared) == 2
    shared.release("job-a")
    assert first.closed and not other.closed and len(shared) == 1
    again = shared.acquire("job-a", Thing)  # a later user of the key gets a fresh one
    assert again is not first and not again.closed


def test_concurrent_users_make_one_object() -> None:
    shared: SharedByKey[Thing] = SharedByKey(close)
    start, made = threading.Barrier(8), Thing.made

    def use(_: int) -> Thing:
        start.wait()
        return shared.acquire("job", Thing)

    with ThreadPoolExecutor(8) as users:
        things = list(users.map(use, range(8)))
    assert len({id(thing) for thing in things}) == 1 and Thing.made == made + 1
    for _ in things:
        shared.release("job")
    assert things[0].closed and len(shared) == 0
