"""Benchmark: does AEC3 need warm-up after a long silence of the far end? Offline, measured.

Run: .venv/bin/python bench/aec_resume.py [--silence-s 60] [--delay-ms 30]

A synthetic room (no sound card): the far end is espeak-ng speech (pivox's server voice),
its echo in the mic is that speech `--delay-ms` late through a decaying reverberant tail
(80 ms, seeded noise) at -6 dB, over low noise. pywebrtc-audio's AudioProcessor (AEC3, as
`pivox.audio.aec.EchoCanceller` builds it) first converges on 10 s of reply; then the far
end is silent for `--silence-s`; then a second reply plays. Ways to spend the silence:

- fed: every block goes through AEC3 (zeros as far end): what pivox did before;
- skipped: no call at all during the silence (the filter and all state kept);
- skipped, then caught up: before the reply, AEC3 hears `--tail-ms` of the (noise) mic it
  missed with a silent far end (what pivox does at resume);
- reset: `reset()` at the start of the silence (learnt echo path forgotten), then skipped;
- fresh: a new AudioProcessor for the second reply (what a naive "off when idle" would do).

Printed per way: the echo left (ERLE, dB) over the second reply's first 100, 250, 500 ms
and 1 s and over the whole reply, and the loudest 20 ms residual (dBFS). Not a test.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the daemon package via the venv

from pivox.audio.aec import load_webrtc
from pivox.server.voice import speech

RATE = 24000
BLOCK = RATE // 100
SENTENCES = ("It is a quarter past four in the afternoon, and the weather is mild.",
             "Here is the forecast for tomorrow: light rain in the morning, then sun.")


def room(far: np.ndarray, delay_ms: int, rng: np.random.Generator) -> np.ndarray:
    """The echo of `far` in the mic: delayed, through an 80 ms decaying tail, at -6 dB."""
    n = RATE * 80 // 1000
    tail = rng.standard_normal(n) * np.exp(-np.arange(n) / (RATE * 0.015))
    tail[0] = 3.0
    tail *= 0.5 / np.sqrt(np.sum(tail ** 2))
    echo = np.convolve(far.astype(np.float64), tail)[: len(far)]
    lag = RATE * delay_ms // 1000
    return np.concatenate([np.zeros(lag), echo[: len(far) - lag]])


def run_blocks(apm: object, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
    """Both signals through AEC3 in 10 ms blocks; the cleaned mic."""
    out = np.empty_like(mic)
    for at in range(0, len(mic) - BLOCK + 1, BLOCK):
        out[at:at + BLOCK] = apm.process(mic[at:at + BLOCK], far[at:at + BLOCK])  # type: ignore[attr-defined]
    return out


def erle(echo: np.ndarray, left: np.ndarray) -> float:
    """dB of the echo's energy over what is left of it."""
    a = float(np.sum(echo.astype(np.float64) ** 2))
    b = float(np.sum(left.astype(np.float64) ** 2))
    return math.inf if b == 0 else 10 * math.log10(max(a, 1e-9) / b)


def main() -> None:
    """Build the room, run every way, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--silence-s", type=float, default=60.0)
    parser.add_argument("--delay-ms", type=int, default=30)
    parser.add_argument("--tail-ms", type=int, default=1000,
                        help="silent far end fed before skipping (the echo tail)")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    voices = [speech(s) for s in SENTENCES]
    if any(v is None for v in voices):
        sys.exit("espeak-ng is needed")
    first, second = (np.frombuffer(v, np.int16) for v in voices)  # type: ignore[arg-type]
    train = np.tile(first, 1 + RATE * 10 // len(first))[: RATE * 10]
    second = second[: len(second) // BLOCK * BLOCK]

    def mic_of(far: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        echo = room(far, args.delay_ms, rng)
        noise = rng.standard_normal(len(far)) * 30
        return np.clip(echo + noise, -32768, 32767).astype(np.int16), echo

    train_mic, _ = mic_of(train)
    silent = int(args.silence_s * RATE) // BLOCK * BLOCK
    quiet_mic = (rng.standard_normal(silent) * 30).astype(np.int16)
    quiet_far = np.zeros(silent, np.int16)
    reply_mic, reply_echo = mic_of(second)
    webrtc = load_webrtc()

    def new() -> object:
        return webrtc.AudioProcessor(sample_rate=RATE, echo_cancellation=True,
                                     noise_suppression=False)

    def trained() -> object:
        apm = new()
        run_blocks(apm, train_mic, train)
        return apm

    ways: dict[str, object] = {}
    apm = trained()
    run_blocks(apm, quiet_mic, quiet_far)
    ways["fed (before: AEC3 on every frame)"] = apm
    tail = int(args.tail_ms * RATE / 1000) // BLOCK * BLOCK
    for fed in (0, tail):
        after = f" after {fed * 1000 // RATE} ms fed" if fed else " at once"
        apm = trained()
        run_blocks(apm, quiet_mic[:fed], quiet_far[:fed])
        ways[f"skipped{after}"] = apm
        apm = trained()
        run_blocks(apm, quiet_mic[:fed], quiet_far[:fed])
        run_blocks(apm, quiet_mic[-tail:], quiet_far[-tail:])
        ways[f"skipped{after}, then caught up"] = apm
    apm = trained()
    apm.reset()  # type: ignore[attr-defined]
    ways["reset at the silence, then skipped"] = apm
    ways["fresh processor (naive off/on)"] = new()
    spans = (100, 250, 500, 1000)
    print(f"echo delay {args.delay_ms} ms, -6 dB, silence {args.silence_s:.0f} s; ERLE in dB "
          f"over the second reply's first ... ms (AEC3 output is ~9 ms late: aligned)")
    print(f"{'way':<42}" + "".join(f"{s:>7}" for s in spans) + f"{'whole':>7}{'peak dBFS':>10}")
    skew = RATE * 9 // 1000  # the band-split delay
    for name, apm in ways.items():
        out = run_blocks(apm, reply_mic, second)[skew:]
        echo = reply_echo[: len(out)]
        cells = [erle(echo[: RATE * s // 1000], out[: RATE * s // 1000]) for s in spans
                 if s > args.delay_ms]  # before the delay there is no echo yet
        frames = out[: len(out) // 480 * 480].reshape(-1, 480).astype(np.float64)
        peak = 10 * math.log10(max(1e-9, float(np.max(np.mean(frames ** 2, axis=1)))) / 32768 ** 2)
        print(f"{name:<42}" + "".join(f"{'-':>7}" for s in spans if s <= args.delay_ms)
              + "".join(f"{c:7.1f}" for c in cells)
              + f"{erle(echo, out):7.1f}{peak:10.1f}")


if __name__ == "__main__":
    main()
