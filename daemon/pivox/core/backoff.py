"""Reconnect delays: capped exponential backoff with full jitter (pure; the caller sleeps)."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delay before attempt n is uniform in [0, min(cap, base * 2**n)] ("full jitter").

    `reset()` after a connection that worked; attempts are unbounded.
    """

    def __init__(
        self, *, base: float = 0.5, cap: float = 30.0, rng: Callable[[], float] = random.random
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={base} cap={cap}")
        self.base = base
        self.cap = cap
        self._rng = rng
        self.attempt = 0

    def bound(self) -> float:
        """The largest delay the next attempt may wait."""
        return min(self.cap, self.base * 2.0 ** min(self.attempt, 32))

    def next_delay(self) -> float:
        """The delay before the next attempt; counts the attempt."""
        delay = self._rng() * self.bound()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from the smallest delay."""
        self.attempt = 0
