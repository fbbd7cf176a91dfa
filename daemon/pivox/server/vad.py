"""Energy voice activity detection for the local server's `server_vad` turn detection.

Input audio is PCM16 mono 24 kHz, cut into 20 ms frames. A frame is speech when its RMS is
at least `rms_threshold(threshold)`; the session's 0..1 `threshold` maps onto -60..0 dBFS.
Times are milliseconds from the start of the session's input audio, as in the Realtime API:
`audio_start_ms` is the first speech frame minus `prefix_padding_ms` (never before the
start of the current buffer); `audio_end_ms` is the end of the last speech frame plus
`silence_duration_ms` rounded up to whole frames, i.e. the moment the silence was long enough.
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass

SAMPLE_RATE = 24000
FRAME_MS = 20
BYTES_PER_SECOND = SAMPLE_RATE * 2
FRAME_BYTES = BYTES_PER_SECOND * FRAME_MS // 1000


def rms_threshold(threshold: float) -> float:
    """The RMS (in PCM16 units) a 20 ms frame must reach to count as speech."""
    return float(32768.0 * 10.0 ** ((threshold * 60.0 - 60.0) / 20.0))


def frame_rms(frame: bytes | bytearray) -> float:
    """Root mean square of little-endian PCM16 samples."""
    samples = array("h")
    samples.frombytes(frame[: len(frame) - len(frame) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStart:
    """Speech began; `audio_start_ms` includes the prefix padding."""

    audio_start_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStop:
    """Speech ended; `audio_end_ms` includes the silence that ended it."""

    audio_end_ms: int


VadEdge = SpeechStart | SpeechStop


class EnergyVad:
    """Feeds PCM16 in, returns speech edges; holds at most one partial frame."""

    def __init__(
        self,
        *,
        threshold: float,
        prefix_padding_ms: int,
        silence_duration_ms: int,
        consumed: int = 0,
    ) -> None:
        """`consumed` is the bytes of session input audio that came before this detector."""
        self.level = rms_threshold(threshold)
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_frames = max(1, math.ceil(silence_duration_ms / FRAME_MS))
        self.consumed = consumed
        self.speaking = False
        self._floor_ms = self.position_ms
        self._silent_run = 0
        self._partial = bytearray()

    def feed(self, pcm: bytes) -> list[VadEdge]:
        """Consume audio appended to the input buffer; return the edges it completes."""
        edges: list[VadEdge] = []
        self._partial += pcm
        whole = len(self._partial) - len(self._partial) % FRAME_BYTES
        for offset in range(0, whole, FRAME_BYTES):
            edge = self._frame(frame_rms(self._partial[offset : offset + FRAME_BYTES]))
            if edge is not None:
                edges.append(edge)
        del self._partial[:whole]
        return edges

    @property
    def position_ms(self) -> int:
        """Milliseconds of input audio consumed so far (whole frames and dropped partials)."""
        return self.consumed * 1000 // BYTES_PER_SECOND

    def restart(self) -> None:
        """The buffer was committed or cleared: forget speech, keep counting time."""
        self.consumed += len(self._partial)
        self._partial.clear()
        self._floor_ms = self.position_ms
        self.speaking = False
        self._silent_run = 0

    def _frame(self, rms: float) -> VadEdge | None:
        start_ms = self.position_ms
        self.consumed += FRAME_BYTES
        loud = rms >= self.level
        if not self.speaking:
            if not loud:
                return None
            self.speaking = True
            self._silent_run = 0
            return SpeechStart(
                audio_start_ms=max(self._floor_ms, start_ms - self.prefix_padding_ms)
            )
        self._silent_run = 0 if loud else self._silent_run + 1
        if self._silent_run < self.silence_frames:
            return None
        self.speaking = False
        self._silent_run = 0
        self._floor_ms = self.position_ms
        return SpeechStop(audio_end_ms=self.position_ms)
