"""The arena cap follows docs/downloading.md: set where the environment is silent, else kept."""

from __future__ import annotations

import pytest

from paircurate.pipeline import memory
from paircurate.transforms.crawl import allocator


@pytest.fixture
def calls(monkeypatch) -> list[tuple[int, int]]:
    """The mallopt calls limit_malloc_arenas makes, in a process where it has not run."""
    made: list[tuple[int, int]] = []

    def mallopt(option: int, value: int) -> int:
        made.append((option, value))
        return 1

    monkeypatch.setattr(memory, "_limited", False)
    monkeypatch.setattr(memory, "glibc_mallopt", lambda: mallopt)
    return made


def test_without_malloc_arena_max_the_cap_is_set_once(calls, monkeypatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory.limit_malloc_arenas()
    assert memory.limit_malloc_arenas()
    assert calls == [(allocator.M_ARENA_MAX, allocator.ARENAS)]


def test_a_users_malloc_arena_max_is_kept(calls, monkeypatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert not memory.limit_malloc_arenas()
    assert calls == []


def test_a_refused_cap_is_not_taken_as_set(monkeypatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(memory, "_limited", False)
    monkeypatch.setattr(memory, "glibc_mallopt", lambda: lambda option, value: 0)
    assert not memory.limit_malloc_arenas()
    assert memory._limited is False
