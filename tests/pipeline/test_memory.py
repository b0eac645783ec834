"""The arena cap follows docs/downloading.md: set where the environment is silent, else kept."""

from __future__ import annotations

from unittest.mock import Mock, call

import pytest

from paircurate.pipeline import memory
from paircurate.transforms.crawl import allocator


@pytest.fixture
def mallopt(monkeypatch) -> Mock:
    """glibc's mallopt as limit_malloc_arenas sees it, recording its calls, in a process where
    the cap was not set yet."""
    recorder = Mock(return_value=1)
    monkeypatch.setattr(memory, "_limited", False)
    monkeypatch.setattr(memory, "glibc_mallopt", lambda: recorder)
    return recorder


def test_without_malloc_arena_max_the_cap_is_set_once(mallopt, monkeypatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory.limit_malloc_arenas()
    assert memory.limit_malloc_arenas()
    assert mallopt.call_args_list == [call(allocator.M_ARENA_MAX, allocator.ARENAS)]


def test_a_users_malloc_arena_max_is_kept(mallopt, monkeypatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert not memory.limit_malloc_arenas()
    assert not mallopt.called


def test_a_refused_cap_is_not_taken_as_set(mallopt, monkeypatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    mallopt.return_value = 0
    assert not memory.limit_malloc_arenas()
    assert memory._limited is False
