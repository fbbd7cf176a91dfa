"""Benchmark: the soxr resampler and the numpy volume loop against the code they replaced.

Run: .venv/bin/python bench/resample.py [--reps 5]      # about 20 s

The old pure-Python linear resampler and per-sample volume loop are taken from git
(`git show <rev>:daemon/pivox/...`, `--baseline-rev`, default the commit before soxr came in)
and run in the same process as today's code. Rows:

- CPU: ms of CPU (process time) per second of audio, 48 kHz -> 24 kHz (a mic that lacks
  24 kHz) and 24 kHz -> 48 kHz (a speaker), fed in 20 ms chunks like the callbacks do;
- aliasing: a 10 s linear sweep 20 Hz..23.9 kHz at 48 kHz taken to 24 kHz; the output's
  energy while the input is at 13..23.9 kHz (which a 24 kHz stream cannot hold) relative to
  its energy while the input is at 1..11 kHz, in dB: what folds back into the audible band;
- volume: µs per 20 ms period (480 samples) of the Speaker's gain at 50 %.

Prints medians over `--reps`. Not a test: nothing passes or fails.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import time
import types
from array import array
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness import arguments
from pivox.audio.soundcard import Speaker
from pivox.core.resample import Resampler
from pivox.core.ring import AudioRing

ROOT = Path(__file__).resolve().parents[1]
BASELINE_REV = "423bebe^"
"""The commit before soxr came in (a name like "main" would compare soxr with itself)."""
PATHS = ("daemon/pivox/core/resample.py", "daemon/pivox/resample.py")
"""Where the module is, after and before the layout of issue 19."""


def old_module(rev: str) -> types.ModuleType:
    """The resampler module as it was at `rev`."""
    for path in PATHS:
        shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT,
                               capture_output=True, text=True)
        if shown.returncode == 0:
            source = shown.stdout
            break
    else:
        raise SystemExit(f"resample.py: no resampler at {rev} ({' or '.join(PATHS)})")
    module = types.ModuleType("old_resample")
    exec(compile(source, "old_resample.py", "exec"), module.__dict__)
    return module


def sweep(rate: int, seconds: float, f0: float = 20.0, f1: float = 23900.0) -> np.ndarray:
    """A linear sweep from `f0` to `f1` Hz."""
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * math.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    return (12000 * np.sin(phase)).astype(np.int16)


def run_chunks(make: Callable[[int, int], object], rate_in: int, rate_out: int,
               pcm: np.ndarray) -> tuple[np.ndarray, float]:
    """Resample `pcm` in 20 ms chunks; returns the output and the CPU seconds it took."""
    resampler = make(rate_in, rate_out)
    chunk = rate_in // 50
    raw = pcm.tobytes()
    pieces = []
    start = time.process_time()
    for i in range(0, len(raw), chunk * 2):
        pieces.append(resampler.process(raw[i : i + chunk * 2]))  # type: ignore[attr-defined]
    cpu = time.process_time() - start
    return np.frombuffer(b"".join(pieces), np.int16), cpu


def aliasing_db(out: np.ndarray, f0: float = 20.0, f1: float = 23900.0) -> float:
    """Output energy while the input sweeps 13..23.9 kHz over that while it sweeps 1..11 kHz."""
    def span(lo: float, hi: float) -> np.ndarray:
        a, b = ((f - f0) / (f1 - f0) for f in (lo, hi))
        return out[int(a * len(out)) : int(b * len(out))].astype(float)

    passed = float(np.mean(span(1000, 11000) ** 2))
    folded = float(np.mean(span(13000, f1) ** 2))
    return 10 * math.log10(max(folded, 1e-9) / passed)


def old_volume(samples: memoryview, gain: int) -> None:
    samples[:] = array("h", [s * gain >> 15 for s in samples])


def volume_us(reps: int) -> tuple[float, float]:
    """µs per period: the old list comprehension, and today's Speaker._read_period at 50 %."""
    ring = AudioRing(48_000)
    speaker = Speaker(ring, volume=50)
    buf = bytearray(np.frombuffer(sweep(24000, 0.02), np.uint8).tobytes())
    view = memoryview(buf).cast("h")
    n = 2000
    old, new = [], []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(n):
            old_volume(view, 16384)
        old.append((time.perf_counter() - start) / n * 1e6)
        start = time.perf_counter()
        for _ in range(n):
            ring.write(bytes(buf), "item")
            speaker._read_period()
        new.append((time.perf_counter() - start) / n * 1e6)
        start = time.perf_counter()
        for _ in range(n):
            ring.write(bytes(buf), "item")
            ring.read_into(speaker._view)
        floor = (time.perf_counter() - start) / n * 1e6
        new[-1] -= floor  # the ring's own share is not the volume's
    return statistics.median(old), statistics.median(new)


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, argv, reps=5, baseline_rev=BASELINE_REV)
    old = old_module(args.baseline_rev).Resampler
    seconds = 10.0
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, baseline "
          f"{args.baseline_rev}")
    print(f"{'row':<34} {'old (linear)':>13} {'soxr':>10} {'ratio':>8}")
    for rate_in, rate_out in ((48000, 24000), (24000, 48000)):
        pcm = sweep(rate_in, seconds, f1=min(rate_in, rate_out) / 2 * 0.99)
        cpu = {}
        for name, make in (("old", old), ("new", Resampler)):
            cpu[name] = statistics.median(
                run_chunks(make, rate_in, rate_out, pcm)[1] for _ in range(args.reps))
        per_s = {k: v / seconds * 1000 for k, v in cpu.items()}
        print(f"{f'CPU ms per s, {rate_in} -> {rate_out}':<34} {per_s['old']:>13.2f} "
              f"{per_s['new']:>10.3f} {per_s['old'] / per_s['new']:>7.0f}x")
    pcm = sweep(48000, seconds)
    alias = {name: aliasing_db(run_chunks(make, 48000, 24000, pcm)[0])
             for name, make in (("old", old), ("new", Resampler))}
    print(f"{'aliasing of a sweep, dB':<34} {alias['old']:>13.1f} {alias['new']:>10.1f} "
          f"{alias['old'] - alias['new']:>6.0f}dB")
    old_us, new_us = volume_us(args.reps)
    print(f"{'volume at 50 %, µs per period':<34} {old_us:>13.1f} {new_us:>10.2f} "
          f"{old_us / new_us:>7.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
