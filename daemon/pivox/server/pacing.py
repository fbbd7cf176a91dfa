"""Reply pacing for both bundled servers: a reply's audio sent in chunks at `speed` x real time.

Chunk n of a reply is due `n * chunk_ms / speed` after the reply started (all at once at
speed 0). Pure: the caller passes the time in and turns each chunk into its own wire messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from pivox.server.voice import SAMPLE_RATE

OUTPUT_BYTES_PER_MS = SAMPLE_RATE * 2 // 1000
"""Reply audio is 24 kHz 16-bit mono PCM on both wires."""


@dataclass(slots=True, kw_only=True)
class PacedReply:
    """The reply being streamed: its audio and words, and how much of each has been sent."""

    audio: bytes
    words: list[str]
    started: float
    chunk_ms: int
    speed: float
    sent: int = 0
    chunks: int = 0
    words_sent: int = 0

    def due(self) -> float:
        """When the next chunk is due."""
        if self.speed <= 0:
            return self.started
        return self.started + self.chunks * self.chunk_ms / 1000 / self.speed

    def take(self) -> bytes:
        """The next chunk (empty once all is sent), counted as sent."""
        chunk = self.audio[self.sent : self.sent + self.chunk_ms * OUTPUT_BYTES_PER_MS]
        self.sent += len(chunk)
        self.chunks += 1
        return chunk

    @property
    def finished(self) -> bool:
        """All the audio has been sent."""
        return self.sent >= len(self.audio)
