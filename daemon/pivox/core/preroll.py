"""PreRoll: the last N bytes of microphone audio, kept so a turn can start before its press.

One preallocated circular buffer; `push` is linear in the frame, `drain` in the bytes kept.
Used from one thread (the asyncio loop).
"""

from __future__ import annotations

__all__ = ["PREROLL_BYTES", "PreRoll"]

PREROLL_BYTES = 14400
"""300 ms of 24 kHz mono PCM16."""


class PreRoll:
    """A bounded byte history: keeps only the most recent `capacity` bytes pushed."""

    __slots__ = ("_buf", "_capacity", "_head", "_size")

    def __init__(self, capacity: int = PREROLL_BYTES) -> None:
        """Preallocate `capacity` bytes of history."""
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self._capacity = capacity
        self._buf = memoryview(bytearray(capacity))
        self._head = 0  # index of the oldest byte kept
        self._size = 0

    @property
    def capacity(self) -> int:
        """Most bytes kept, fixed at construction."""
        return self._capacity

    def __len__(self) -> int:
        """Bytes kept now."""
        return self._size

    def push(self, frame: bytes | bytearray | memoryview) -> None:
        """Append `frame`, dropping the oldest bytes beyond `capacity`."""
        src = memoryview(frame).cast("B")
        cap = self._capacity
        if len(src) >= cap:
            self._buf[:] = src[len(src) - cap :]
            self._head, self._size = 0, cap
            return
        tail = (self._head + self._size) % cap
        first = min(len(src), cap - tail)
        self._buf[tail : tail + first] = src[:first]
        self._buf[: len(src) - first] = src[first:]
        overflow = max(0, self._size + len(src) - cap)
        self._head = (self._head + overflow) % cap
        self._size += len(src) - overflow

    def drain(self) -> bytes:
        """Return the bytes kept, oldest first, and empty the history."""
        head, size = self._head, self._size
        first = min(size, self._capacity - head)
        kept = b"".join((self._buf[head : head + first], self._buf[: size - first]))
        self._head, self._size = 0, 0
        return kept
