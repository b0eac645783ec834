"""BodyBudget: new holds wait while the bytes held reach the cap; released bytes let them in."""

from __future__ import annotations

import threading

import pytest

from paircurate.transforms.crawl.budget import BodyBudget


def test_a_hold_waits_while_the_cap_is_reached_and_enters_once_bytes_are_given_back() -> None:
    budget = BodyBudget(cap=100)
    entered = threading.Event()
    with budget.hold() as first:
        first.set(100)

        def second_hold() -> None:
            with budget.hold():
                entered.set()

        waiter = threading.Thread(target=second_hold)
        waiter.start()
        assert not entered.wait(0.2)  # 100 bytes held: the cap is reached
        first.set(40)
        assert entered.wait(5)  # room again
        waiter.join()
    assert (budget.used, budget.peak) == (0, 100)


def test_a_body_being_read_may_pass_the_cap() -> None:
    budget = BodyBudget(cap=10)
    with budget.hold() as held:
        held.set(5000)
        assert budget.used == 5000
    assert budget.used == 0


def test_a_hold_counts_one_byte_before_its_body_arrives() -> None:
    budget = BodyBudget(cap=2)
    with budget.hold(), budget.hold():
        assert budget.used == 2
    assert budget.used == 0


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1 byte"):
        BodyBudget(0)
