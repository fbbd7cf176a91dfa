"""Benchmark: the per-delta cost of reply audio when every delta opens a new item id.

Run: .venv/bin/python bench/items.py [--items 60000] [--reps 5]

A hostile (or broken) server can give each audio delta of one open response a new item id.
What each delta costs must not grow with the items before it. Three rows, each timed over a
window of 200 deltas after 1 000 items and again after `--items` items (median of `--reps`):

- ring: `AudioRing.write` of an 8 B delta (the smallest a server can send) under a new item
  id into the daemon's ring (10 s), the speaker reading one delta in four, so tens of
  thousands of items stay queued (45 000 at 60 000 items);
- turn: `TurnTracker.audio_arrived` with a new item id (the turn's item list);
- daemon path: `Playback.admit` + `Playback.write` + `TurnTracker.audio_arrived`, what the
  daemon does per delta, with the per-response item cap in force.

Prints µs per delta at both points and their ratio (1.0: flat). Not a test.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable

from harness import arguments
from pivox.core.ring import AudioRing
from pivox.core.turns import TurnTracker

try:
    from pivox.audio.playback import Playback
except ImportError:  # the code before the fix, for a before/after comparison
    Playback = None  # type: ignore[assignment,misc]

logging.getLogger("pivox.playback").setLevel(logging.ERROR)  # the cap logs once per run
DELTA = bytes(960)
TINY = bytes(8)
WINDOW = 200
RING = 480_000


def timed(step: Callable[[int], None], start: int, count: int) -> float:
    """µs per call of step(n) for n in start..start+count."""
    t0 = time.perf_counter()
    for n in range(start, start + count):
        step(n)
    return (time.perf_counter() - t0) / count * 1e6


def profile(make: Callable[[], Callable[[int], None]], items: int) -> tuple[float, float]:
    """(µs per delta after 1 000 items, after `items` items) for a fresh setup."""
    step = make()
    for n in range(1000):
        step(n)
    early = timed(step, 1000, WINDOW)
    for n in range(1000 + WINDOW, items):
        step(n)
    return early, timed(step, items, WINDOW)


def ring_step() -> Callable[[int], None]:
    ring = AudioRing(RING)
    out = bytearray(len(TINY))

    def step(n: int) -> None:
        if ring.free < len(TINY):
            ring.read_into(bytearray(RING // 2))  # the speaker catches up
        ring.write(TINY, f"item_{n}")
        if n % 4 == 3:
            ring.read_into(out)

    return step


def turn_step() -> Callable[[int], None]:
    turns = TurnTracker()
    turns.start(0.0, 0)
    return lambda n: turns.audio_arrived(0.0, "resp_1", f"item_{n}")


def daemon_step() -> Callable[[int], None]:
    ring, turns = AudioRing(RING), TurnTracker()
    playback = Playback(ring, 300 * 48_000)
    turns.start(0.0, 0)
    out = bytearray(len(DELTA))

    def step(n: int) -> None:
        item = f"item_{n}"
        if playback.admit("resp_1", item):
            turns.audio_arrived(0.0, "resp_1", item)
            playback.write(DELTA, item, "resp_1")
        ring.read_into(out)

    return step


def main() -> None:
    args = arguments(__doc__, items=60_000, reps=5)
    rows: list[tuple[str, Callable[[], Callable[[int], None]]]] = [
        ("ring", ring_step), ("turn", turn_step)]
    if Playback is not None:
        rows.append(("daemon path", daemon_step))
    print(f"{'row':<12} {'µs @1k':>9} {'µs @' + str(args.items // 1000) + 'k':>9} {'ratio':>7}")
    for name, make in rows:
        runs = [profile(make, args.items) for _ in range(args.reps)]
        early = statistics.median(r[0] for r in runs)
        late = statistics.median(r[1] for r in runs)
        print(f"{name:<12} {early:>9.2f} {late:>9.2f} {late / early:>6.2f}x")


if __name__ == "__main__":
    main()
