"""Benchmark: how often the built-in "okay_nabu" model hears espeak-ng's "Okay Nabu", what
else wakes it, and its speed offline.

Run: .venv/bin/python bench/wake_accuracy.py [--minutes M]

- hits: "Okay Nabu" in every voice of tests/wake_corpus.py `VOICES` at 130, 150 and 175
  words per minute, each alone between silences, clean and with white noise at 20 dB SNR;
- near-misses: every phrase of `NEAR_MISSES` and `CONFUSABLE` in the same voices and speeds:
  how many variants fire;
- false accepts in `--minutes` of other speech (`other_speech`, the unit test's corpus),
  processed in one stream, and the detector's CPU time for it (faster than real time by).

Not a test: nothing passes or fails.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.wake_corpus import CONFUSABLE, NEAR_MISSES, VOICES, other_speech, say, silence

from harness import arguments
from pivox.audio.wake import WakeWordDetector

SPEEDS = (130, 150, 175)
FRAME = 960


def fires(detector: WakeWordDetector, pcm: bytes) -> int:
    """Detections in `pcm` (between silences), from a fresh detector state."""
    detector.reset()
    padded = silence(500) + pcm + silence(1000)
    return sum(detector.process(padded[i:i + FRAME]) for i in range(0, len(padded), FRAME))


def noisy(pcm: bytes, snr_db: float, rng: np.random.Generator) -> bytes:
    """`pcm` with white noise `snr_db` below its RMS."""
    x = np.frombuffer(pcm, np.int16).astype(np.float64)
    rms = np.sqrt(np.mean(x[np.abs(x) > 300] ** 2))
    noise = rng.normal(0, rms / 10 ** (snr_db / 20), len(x))
    return np.clip(x + noise, -32768, 32767).astype(np.int16).tobytes()


def main() -> None:
    """Parse the arguments, run, print."""
    args = arguments(__doc__, minutes=10.0)
    detector = WakeWordDetector("okay_nabu")
    rng = np.random.default_rng(1)
    variants = [(v, s) for v in VOICES for s in SPEEDS]
    clean = [fires(detector, say("Okay Nabu", v, s)) > 0 for v, s in variants]
    dirty = [fires(detector, noisy(say("Okay Nabu", v, s), 20, rng)) > 0 for v, s in variants]
    print(f'"Okay Nabu", {len(variants)} espeak-ng variants ({len(VOICES)} voices x {SPEEDS} wpm)')
    print(f"  detected clean: {sum(clean)}/{len(variants)}; at 20 dB SNR: "
          f"{sum(dirty)}/{len(variants)}")
    missed = [f"{v}@{s}" for (v, s), hit in zip(variants, clean, strict=True) if not hit]
    print(f"  missed clean: {', '.join(missed) or 'none'}")
    print("phrases that are not the wake word: variants that fire")
    for phrase in (*NEAR_MISSES, *CONFUSABLE):
        fired = sum(fires(detector, say(phrase, v, s)) > 0 for v, s in variants)
        tag = "  (CONFUSABLE: not in the unit test's corpus)" if phrase in CONFUSABLE else ""
        print(f"  {phrase!r:24} {fired:2d}/{len(variants)}{tag}")
    pcm = other_speech(60 * args.minutes)
    detector.reset()
    started = time.process_time()
    hits = sum(detector.process(pcm[i:i + FRAME]) for i in range(0, len(pcm), FRAME))
    cpu = time.process_time() - started
    seconds = len(pcm) / 48000
    print(f"other speech: {seconds:.0f} s, {hits} false accepts; detector CPU {cpu:.2f} s "
          f"= {100 * cpu / seconds:.2f} % of a core ({seconds / cpu:.0f}x real time)")


if __name__ == "__main__":
    main()
