"""Streaming resampler for mono 16-bit PCM in native byte order, on libsoxr (`soxr`).

Used when a sound device cannot run at 24 kHz (mic: device rate -> 24 kHz, speaker:
24 kHz -> device rate), and for Gemini's 16 kHz input (`pivox.protocol.gemini`). soxr's "HQ"
filter is a proper low-pass: content above the new Nyquist frequency is removed, not folded
back (the linear interpolator it replaced folded a sweep back; `bench/resample.py` measures
both). Quality "LQ" (16-bit, steep low-pass)
holds back 1 ms (48 kHz) to at most 8 ms (16 kHz) until later chunks push it out;
"MQ"/"HQ" hold back 26-37 ms, latency a barge-in would hear. Positions stay exact over hours.
"""

from __future__ import annotations

import sys

import numpy as np
import soxr  # type: ignore[import-untyped]

if sys.byteorder != "little":  # the wire and PortAudio's paInt16 here are s16le
    raise ImportError("pivox.resample assumes a little-endian machine")


class Resampler:
    """Converts a stream of s16 chunks from `in_rate` to `out_rate`; keeps state across calls."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"rates must be positive, got {in_rate} and {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = (
            soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality="LQ")
            if in_rate != out_rate
            else None
        )

    def process(self, pcm: bytes | bytearray | memoryview) -> bytes:
        """Resample one chunk (an even number of bytes) and return what is ready of the output."""
        if self._stream is None:
            return bytes(pcm)
        samples = np.frombuffer(pcm, dtype=np.int16)
        return self._stream.resample_chunk(samples).tobytes()  # type: ignore[no-any-return]

    def flush(self) -> bytes:
        """The output still held in the filter (the end of a stream); the next `process`
        starts a new stream."""
        if self._stream is None:
            return b""
        tail: bytes = self._stream.resample_chunk(np.zeros(0, np.int16), last=True).tobytes()
        self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="int16",
                                           quality="LQ")
        return tail
