"""FarEnd: the echo canceller's reference, what the speaker handed out, paired with mic frames.

Single-producer / single-consumer, like `AudioRing`:

- the producer is the speaker (its PortAudio callback thread): `write` appends exactly the
  PCM each callback handed to the sound card (after volume; zeros while nothing plays), and
  `unwrite` (from `Speaker.flush`, while no callback runs) takes back what was handed but
  dropped unheard;
- the consumer is the mic side (PortAudio's input callback thread): `take` returns one
  mic frame's worth of reference per mic frame.

Pairing is by counters, not clocks: each mic frame takes the next bytes the speaker wrote, so
in a steady state far byte k meets the mic at a fixed offset (the fill level) and AEC3 finds
the acoustic delay on top of it. The level moves only when the streams slip: when the speaker
is late (or not running) `take` pads with zeros, which raises the level just enough that the
same jitter no longer runs it dry; when the level exceeds `max_lag` (a stall, a burst after a
reopen) `take` skips the oldest bytes down to `target_lag`, keeping the reference ahead of the
echo it explains. Both are counted. One lock guards the indices and copies (linear in the
bytes touched, never held across a blocking call). No I/O.
"""

from __future__ import annotations

import threading

__all__ = ["FarEnd"]


class FarEnd:
    """A bounded byte FIFO of reference PCM: `write` on the speaker side, `take` on the mic side."""

    __slots__ = ("_buf", "_capacity", "_lock", "_max_lag", "_read", "_target_lag",
                 "_written", "padded", "skipped")

    def __init__(self, capacity: int, *, max_lag: int, target_lag: int) -> None:
        """Keep up to `capacity` bytes; skip down to `target_lag` once past `max_lag` bytes."""
        if not 0 <= target_lag <= max_lag <= capacity:
            raise ValueError(f"need 0 <= target_lag <= max_lag <= capacity, got "
                             f"{target_lag}, {max_lag}, {capacity}")
        self._capacity = capacity
        self._max_lag = max_lag
        self._target_lag = target_lag
        self._buf = bytearray(capacity)
        self._lock = threading.Lock()
        self._written = 0  # bytes ever written (the producer's counter)
        self._read = 0  # bytes ever taken or skipped (the consumer's counter)
        self.padded = 0
        """Zero bytes `take` handed out because the speaker had not written them yet."""
        self.skipped = 0
        """Reference bytes `take` dropped to bring the level back to `target_lag`."""

    @property
    def level(self) -> int:
        """Bytes written and not yet taken."""
        return self._written - self._read

    def write(self, pcm: bytes | bytearray | memoryview) -> None:
        """Producer: append `pcm`; when full, the oldest untaken bytes give way (skipped)."""
        src = memoryview(pcm).cast("B")
        cap = self._capacity
        if len(src) > cap:
            src = src[len(src) - cap :]
        with self._lock:
            at = self._written % cap
            first = min(len(src), cap - at)
            self._buf[at : at + first] = src[:first]
            self._buf[: len(src) - first] = src[first:]
            self._written += len(src)
            overflow = self._written - self._read - cap
            if overflow > 0:
                self._read += overflow
                self.skipped += overflow

    def unwrite(self, n: int) -> None:
        """Producer: take back the last `n` bytes written (never what was already taken)."""
        with self._lock:
            self._written -= max(0, min(n, self._written - self._read))

    def take(self, n: int) -> bytes:
        """Consumer: the next `n` bytes of reference, zero-padded if the speaker is behind."""
        with self._lock:
            level = self._written - self._read
            if level > self._max_lag + n:
                drop = level - self._target_lag - n
                self._read += drop
                self.skipped += drop
                level -= drop
            got = min(n, level)
            at = self._read % self._capacity
            first = min(got, self._capacity - at)
            out = bytes(self._buf[at : at + first]) + bytes(self._buf[: got - first])
            self._read += got
            self.padded += n - got
        return out + bytes(n - got) if got < n else out
