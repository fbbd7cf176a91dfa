"""Streaming linear-interpolation resampler for mono 16-bit PCM in native byte order.

Used only when a sound device cannot run at 24 kHz (mic: device rate -> 24 kHz, speaker:
24 kHz -> device rate). Pure Python on `array`, no dependency: a few hundred samples per
20 ms frame cost well under a millisecond. Positions are exact integers (no drift over
hours); there is no anti-alias filter, so downsampling folds content above the new
Nyquist frequency back, which speech from a microphone barely has.
"""

from __future__ import annotations

import sys
from array import array

if sys.byteorder != "little":  # the wire and PortAudio's paInt16 here are s16le
    raise ImportError("pivox.resample assumes a little-endian machine")


class Resampler:
    """Converts a stream of s16 chunks from `in_rate` to `out_rate`; keeps state across calls."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"rates must be positive, got {in_rate} and {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        # The next output sample sits at input index `_pos / out_rate`, counted from
        # `_prev`, the last input sample of the previous chunk (index 0).
        self._pos = out_rate
        self._prev = 0

    def process(self, pcm: bytes | bytearray | memoryview) -> bytes:
        """Resample one chunk (an even number of bytes) and return what is ready of the output."""
        samples = array("h", [self._prev])
        samples.frombytes(pcm)
        last = len(samples) - 1
        out_rate, step = self.out_rate, self.in_rate
        pos, limit = self._pos, last * out_rate
        out = array("h")
        append = out.append
        while pos <= limit:
            i, frac = divmod(pos, out_rate)
            if frac:
                a = samples[i]
                append(a + (samples[i + 1] - a) * frac // out_rate)
            else:
                append(samples[i])
            pos += step
        self._pos = pos - limit
        self._prev = samples[last]
        return out.tobytes()
