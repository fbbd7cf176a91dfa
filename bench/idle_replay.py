"""Offline replay of pivox's idle mic path, for counting instructions (valgrind) or timing.

Run: .venv/bin/python bench/idle_replay.py [--seconds 60] [--mode wake_word|push_to_talk]
     valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
         .venv/bin/python bench/idle_replay.py --seconds 60          # then again with 0

`--seconds` of 20 ms mic frames of low noise (about -60 dBFS, seeded), nobody speaking and
nothing playing, through the objects `pivox run` uses on them, in the order it does: the
speaker writes a silent period into the `FarEnd`, the mic frame takes its reference, and
`Capture.feed` runs the echo canceller, the wake gate (wake_word: the okay_nabu detector)
and the pre-roll. No devices, no event loop, no clock: what PortAudio, the loop's hops and
ticks cost is not in it (bench/idle_cost.py measures those live). Prints the CPU time it took
(process time, this machine). Run with PYTHONPATH at another checkout's daemon/ for its
code; the count of a 0 s run (imports, model loads) is the part to subtract.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pivox.audio.aec import EchoCanceller
from pivox.audio.capture import Capture
from pivox.audio.wake import WakeWordDetector
from pivox.core.farend import FarEnd
from pivox.core.preroll import PreRoll

RATE = 24000
FRAME_BYTES = RATE // 50 * 2
NOISE_RMS = 30.0


def main() -> None:
    """Build the pipeline, replay, print the time taken."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--mode", choices=("wake_word", "push_to_talk"), default="wake_word")
    args = parser.parse_args()
    rng = np.random.default_rng(24)
    noise = (rng.standard_normal(RATE * 10) * NOISE_RMS).astype("<i2").tobytes()
    frames = [noise[at:at + FRAME_BYTES] for at in range(0, len(noise), FRAME_BYTES)]
    far_end = FarEnd(RATE * 2, target_lag=480)
    silence = memoryview(bytes(FRAME_BYTES))
    gate = WakeWordDetector("okay_nabu") if args.mode == "wake_word" else None
    capture = Capture(PreRoll(14400), canceller=EchoCanceller(RATE), gate=gate)
    far_end.write(silence)  # the speaker runs a period ahead
    count = int(args.seconds * 50)
    started = time.process_time()
    for k in range(count):
        far_end.write(silence)
        far = far_end.take(FRAME_BYTES)
        assert far is not None
        if capture.feed(frames[k % len(frames)], far, streaming=False).woke:
            raise SystemExit("the noise woke the detector")
    spent = time.process_time() - started
    per_second = f" = {1000 * spent / args.seconds:.2f} ms per second of audio" if count else ""
    print(f"{args.mode}: {count} frames ({args.seconds:.0f} s of audio) in {spent:.3f} s CPU"
          + per_second)


if __name__ == "__main__":
    main()
