"""EchoCanceller: WebRTC AEC3 (via `pywebrtc-audio`) on 16-bit mono frames, with an ERLE measure.

`process(mic, far)` takes one mic frame and the far-end reference of the same length (what
the speaker was handed, zeros while silent) and returns the mic frame with the speaker's
echo removed. WebRTC's AudioProcessing works on 10 ms blocks, so a frame must be a whole
number of them (20 ms frames are two); each block's far end goes in before its mic block.
AEC3 finds the echo's delay itself (up to several hundred ms); its band-split filters delay
the output by about 9 ms at 24 kHz. Optional WebRTC noise suppression runs in the same pass.

Echo cancellation only where there can be echo: once the far end has been all zeros for
`QUIET_MS` (and from the start, before anything played), `process` returns the mic frame
untouched and AEC3 is not called at all (its state kept as it was); the first far-end frame
that is not silent resumes it, after AEC3 has heard the last `ECHO_TAIL_MS` of the mic it
missed with a silent far end.
Measured (bench/aec_resume.py): AEC3 resumed this way cancels the next reply as well as
one fed zeros all along (ERLE within 0.2 dB, loudest residual the same), while one skipped
as soon as the far end went silent, or reset, leaks 5-27 dB more at the reply's start: it
must first see the echo's tail out. The catch-up costs one burst of AEC3 per reply (1 s of
blocks, ~10 ms CPU here) and tells its suppressor the speaker was silent. With noise
suppression on (same pass) nothing is bypassed.
Not thread-safe: one caller (the asyncio loop). No I/O.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from pivox.host.optional import MissingDependency, require

__all__ = ["EchoCanceller", "MissingDependency", "erle_db", "load_webrtc"]

BLOCK_MS = 10
ECHO_TAIL_MS = 1000
"""Silence of the far end after which there is no echo left to cancel: AEC3 follows delays
up to about 0.5 s with a filter of about 50 ms beyond; twice that for rooms and margin. AEC3
hears this much of the mic it missed before it resumes."""
QUIET_MS = 20_000
"""Silence of the far end after which AEC3 sleeps: longer than the pauses between the turns
of a conversation. Sleeping one echo tail after each reply let the next reply's start leak
now and then (the echo room, 20 replies at 0 dB: 2 of 5 runs passed, 3 of 3 without)."""


def load_webrtc() -> Any:
    """The `pywebrtc_audio` module; raises MissingDependency when it is not installed.

    On armv7 there is no wheel: it builds from source, through the `aec` extra.
    """
    return require("pywebrtc_audio", "pywebrtc-audio", "aec")


class EchoCanceller:
    """Removes the far end's echo from mic frames: `process(mic, far) -> cleaned mic`."""

    def __init__(self, rate: int = 24000, *, noise_suppression: bool = False) -> None:
        if rate % 100:
            raise ValueError(f"rate must hold a whole number of samples per 10 ms, got {rate}")
        self.rate = rate
        self.noise_suppression = noise_suppression
        self.block = rate * BLOCK_MS // 1000
        self._tail = rate * ECHO_TAIL_MS // 1000  # mic samples heard again before resuming
        self._quiet = rate * QUIET_MS // 1000  # silent far-end samples before bypassing
        self._silent = self._quiet  # far-end samples silent in a row: nothing has played yet
        self._zeros = b""  # a silent far-end frame of the last length seen
        self._missed: deque[bytes] = deque(maxlen=ECHO_TAIL_MS // BLOCK_MS)
        """The mic frames passed through while bypassed, the last echo tail's worth."""
        self.bypassed = 0
        """Mic frames passed through untouched (the far end silent for QUIET_MS, or since the
        start)."""
        self._apm = load_webrtc().AudioProcessor(
            sample_rate=rate, echo_cancellation=True, noise_suppression=noise_suppression
        )

    def process(self, mic: bytes | bytearray | memoryview, far: bytes | bytearray | memoryview,
                ) -> bytes:
        """The mic frame without the echo of `far` (same length, a multiple of 10 ms); `mic`
        itself while the far end has been silent for QUIET_MS or since the start (noise
        suppression off)."""
        block = self.block
        if len(mic) != len(far) or len(mic) % (2 * block):
            raise ValueError(f"mic and far frames must be equal multiples of {block} samples, "
                             f"got {len(mic) // 2} and {len(far) // 2}")
        far = far if isinstance(far, bytes) else bytes(far)
        if len(far) != len(self._zeros) and not any(far):
            self._zeros = far  # a silent frame of a new length
        if far == self._zeros:
            if self._silent >= self._quiet and not self.noise_suppression:
                self.bypassed += 1
                mic = mic if isinstance(mic, bytes) else bytes(mic)
                self._missed.append(mic)
                return mic
            self._silent += len(far) // 2
        else:
            self._silent = 0
            if self._missed:
                self._catch_up()
        return self._run(mic, far)

    def _catch_up(self) -> None:
        """Resuming: AEC3 first hears the last echo tail's worth of the mic it missed, with a
        silent far end (its suppressor then knows the speaker was silent; output dropped)."""
        missed, budget = [], self._tail
        while self._missed and budget > 0:
            frame = self._missed.pop()
            missed.append(frame)
            budget -= len(frame) // 2
        self._missed.clear()
        for frame in reversed(missed):
            self._run(frame, bytes(len(frame)))

    def _run(self, mic: bytes | bytearray | memoryview, far: bytes) -> bytes:
        """Both frames through AEC3, 10 ms blocks at a time."""
        block = self.block
        near = np.frombuffer(mic, dtype=np.int16)
        ref = np.frombuffer(far, dtype=np.int16)
        if len(near) == block:
            return self._apm.process(near, ref).tobytes()  # type: ignore[no-any-return]
        out = np.empty_like(near)
        for at in range(0, len(near), block):
            out[at : at + block] = self._apm.process(near[at : at + block], ref[at : at + block])
        return out.tobytes()

    def reset(self) -> None:
        """Forget the echo path learned so far (a new room, a device reopened)."""
        self._apm.reset()
        self._silent = self._quiet
        self._missed.clear()


def erle_db(mic: bytes | np.ndarray, cleaned: bytes | np.ndarray) -> float:
    """Echo return loss enhancement: mic energy over cleaned energy, in dB (inf if all gone)."""
    a = np.frombuffer(mic, dtype=np.int16) if isinstance(mic, bytes) else mic
    b = np.frombuffer(cleaned, dtype=np.int16) if isinstance(cleaned, bytes) else cleaned
    before = float(np.sum(a.astype(np.float64) ** 2))
    after = float(np.sum(b.astype(np.float64) ** 2))
    if after == 0.0:
        return math.inf
    return 10 * math.log10(max(before, 1e-12) / after)
