"""What `pivox.host.logsafe.SafeRecords` costs per log line, against the same handler without it.

    .venv/bin/python bench/logsafe.py [--lines 20000] [--reps 5]

Rows (µs per line, median of --reps, plain-line handler writing to an in-memory stream):
- plain: PlainFormatter, no filter (the baseline);
- safe, ordinary line: the daemon's state-transition line with two fields, through the filter
  (its clock moves 10 s per call, so the rate limiter lets every line through);
- safe, 1 MiB argument: a transcript line whose argument is 1 MiB (the filter cuts it to
  1000 characters; the plain handler writes it all);
- safe, suppressed: the same template over its rate (what a flood costs once limited).
"""

from __future__ import annotations

import io
import itertools
import logging
import statistics
import time
from collections.abc import Callable

from harness import arguments
from pivox.host.logsafe import RateLimiter, SafeRecords
from pivox.host.logsetup import PlainFormatter


def moving_clock() -> Callable[[], float]:
    """A clock 10 s further on at every call: no line is ever over its rate."""
    ticks = itertools.count(step=10)
    return lambda: float(next(ticks))


def logger_with(safe: bool, clock: Callable[[], float] | None = None) -> logging.Logger:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(PlainFormatter())
    if safe:
        handler.addFilter(SafeRecords(RateLimiter(clock=clock or moving_clock())))
    logger = logging.getLogger(f"pivox.bench.{'safe' if safe else 'plain'}.{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


def per_line_us(log: Callable[[int], None], lines: int) -> float:
    start = time.perf_counter()
    for i in range(lines):
        log(i)
    return (time.perf_counter() - start) / lines * 1e6


def main() -> None:
    args = arguments(__doc__, lines=20_000, reps=5)
    big = "t" * (1 << 20)
    fields = {"PIVOX_STATE": "idle", "PIVOX_EVENT": "Drained"}
    frozen = [0.0]  # a clock that never moves: every line after the burst is suppressed

    def ordinary(logger: logging.Logger) -> Callable[[int], None]:
        return lambda i: logger.info("%s -> %s (%s)", "speaking", "idle", "Drained",
                                     extra=fields)

    def transcript(logger: logging.Logger) -> Callable[[int], None]:
        return lambda i: logger.info("assistant: %s", big)

    def flood(logger: logging.Logger) -> Callable[[int], None]:
        return lambda i: logger.warning("skipped a malformed server event: %s", "x")

    rows: dict[str, list[float]] = {}
    big_lines = max(1, args.lines // 200)
    for _ in range(args.reps):
        cases = {
            "plain": (ordinary(logger_with(False)), args.lines),
            "safe, ordinary line": (ordinary(logger_with(True)), args.lines),
            "plain, 1 MiB argument": (transcript(logger_with(False)), big_lines),
            "safe, 1 MiB argument": (transcript(logger_with(True)), big_lines),
            "safe, suppressed": (flood(logger_with(True, lambda: frozen[0])), args.lines),
        }
        for name, (log, lines) in cases.items():
            rows.setdefault(name, []).append(per_line_us(log, lines))
    base = statistics.median(rows["plain"])
    print(f"{'row':<24} {'us/line':>9} {'vs plain':>9}")
    for name, values in rows.items():
        us = statistics.median(values)
        print(f"{name:<24} {us:>9.2f} {us / base:>8.2f}x")


if __name__ == "__main__":
    main()
