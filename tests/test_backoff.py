"""Backoff: full jitter under a capped exponential bound."""

from __future__ import annotations

import pytest

from pivox.core.backoff import Backoff


def test_bound_doubles_up_to_the_cap_and_reset_starts_again() -> None:
    backoff = Backoff(base=0.5, cap=30.0, rng=lambda: 1.0)
    delays = [backoff.next_delay() for _ in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff.attempt == 9
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_full_jitter_spans_zero_to_the_bound() -> None:
    backoff = Backoff(base=1.0, cap=8.0, rng=lambda: 0.0)
    assert [backoff.next_delay() for _ in range(3)] == [0.0, 0.0, 0.0]
    backoff = Backoff(base=1.0, cap=8.0, rng=lambda: 0.25)
    assert [backoff.next_delay() for _ in range(5)] == [0.25, 0.5, 1.0, 2.0, 2.0]


def test_attempts_are_unbounded_without_overflow() -> None:
    backoff = Backoff(base=0.5, cap=30.0, rng=lambda: 1.0)
    backoff.attempt = 10_000
    assert backoff.next_delay() == 30.0


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_bad_parameters_are_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff(base=base, cap=cap)
