"""FarEnd: the echo canceller's reference, what the speaker handed out, paired with mic frames.

Single-producer / single-consumer, like `AudioRing`:

- the producer is the speaker (its PortAudio callback thread): `write` appends exactly the
  PCM each callback handed to the sound card (after volume; zeros while nothing plays), and
  `unwrite` (from `Speaker.flush`, while no callback runs) takes back what was handed but
  dropped unheard;
- the consumer is the loop: `take(n)` returns the reference for the next mic frame of `n`
  bytes, or None while the speaker has not written it yet (the caller holds the mic frame
  and asks again; see `pivox.audio.devices`); `pass_over(n)` gives up on a stalled speaker: zeros,
  and the bytes it writes for those positions later are dropped (`late`), so the pairing
  stays where it was; `reanchor()` restarts the pairing at the speaker's newest byte when
  it is back but still behind.

Pairing is by counters, not clocks: mic frame k meets reference bytes [k*n, (k+1)*n) plus a
fixed offset, whatever the threads' timing (PulseAudio delivers both streams in bursts after
its stalls, up to 150 ms apart here), so the echo's delay as AEC3 sees it stays put: every
change of it costs a re-convergence, and the echo leaks meanwhile.

The offset: left alone it settles near the output plus the input latency, which leaves the
reference only the room's acoustic delay ahead of its echo (3 ms measured in the echo room:
too close). So when the level left after a take stays above `target_lag` for a whole `window`
of takes, `take` skips the excess once (`skipped`); the reference then leads its echo by that
much more. One lock guards the indices and copies (linear in the bytes touched, never held
across a blocking call). No I/O.
"""

from __future__ import annotations

import threading

__all__ = ["FarEnd"]


class FarEnd:
    """A bounded byte FIFO of reference PCM: `write` on the speaker side, `take` on the mic side."""

    __slots__ = ("_buf", "_capacity", "_lock", "_lowest", "_read", "_takes", "_target_lag",
                 "_view", "_window", "_written", "late", "reanchored", "skipped")

    def __init__(self, capacity: int, *, target_lag: int, window: int = 50) -> None:
        """Keep up to `capacity` bytes; skip down to `target_lag` when the level stays above it
        for `window` takes."""
        if not 0 <= target_lag <= capacity or window <= 0:
            raise ValueError(f"need 0 <= target_lag <= capacity and window > 0, got "
                             f"{target_lag}, {capacity}, {window}")
        self._capacity = capacity
        self._target_lag = target_lag
        self._window = window
        self._takes = 0
        self._lowest = capacity
        self._buf = bytearray(capacity)
        self._view = memoryview(self._buf)
        self._lock = threading.Lock()
        self._written = 0  # bytes ever written (the producer's counter)
        self._read = 0  # bytes ever taken or skipped (the consumer's counter)
        self.skipped = 0
        """Reference bytes dropped: to bring the level down to `target_lag`, or when full."""
        self.late = 0
        """Bytes written for positions `pass_over` had already given up on (dropped)."""
        self.reanchored = 0
        """Times the pairing restarted at the speaker's newest byte."""

    @property
    def written(self) -> int:
        """Bytes ever written: the producer's counter."""
        return self._written

    @property
    def level(self) -> int:
        """Bytes written and not yet taken (negative: the speaker is that far behind)."""
        return self._written - self._read

    def write(self, pcm: bytes | bytearray | memoryview) -> None:
        """Producer: append `pcm`; when full, the oldest untaken bytes give way (skipped)."""
        src = memoryview(pcm).cast("B")
        cap = self._capacity
        with self._lock:
            behind = max(0, min(len(src), self._read - self._written))
            self.late += behind
            self._written += behind
            src = src[behind:]
            if len(src) > cap:
                self._written += len(src) - cap
                src = src[len(src) - cap :]
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

    def pass_over(self, n: int) -> bytes:
        """Consumer: silence for the next `n` bytes the stalled speaker has not written."""
        with self._lock:
            got = max(0, min(n, self._written - self._read))
            out = self._copy(self._read, got)
            self._read += n
            self._takes, self._lowest = 0, self._capacity
        return out + bytes(n - got) if got < n else out

    def reanchor(self) -> None:
        """Consumer: restart the pairing at the speaker's newest byte (it is back, but behind)."""
        with self._lock:
            if self._read > self._written:
                self._read = self._written
                self.reanchored += 1

    def take(self, n: int) -> bytes | None:
        """Consumer: the next `n` bytes of reference, or None until the speaker wrote them."""
        with self._lock:
            level = self._written - self._read
            if level < n:
                return None
            self._lowest = min(self._lowest, level - n)
            self._takes += 1
            if self._takes == self._window:
                if self._lowest > self._target_lag:  # never ran low: lead the echo by more
                    drop = self._lowest - self._target_lag
                    self._read += drop
                    self.skipped += drop
                self._takes, self._lowest = 0, self._capacity
            out = self._copy(self._read, n)
            self._read += n
        return out

    def _copy(self, start: int, n: int) -> bytes:
        """The `n` bytes from counter `start` on, in one new bytes (two parts only at the wrap)."""
        at = start % self._capacity
        if at + n <= self._capacity:
            return self._view[at : at + n].tobytes()
        first = self._capacity - at
        return self._view[at:].tobytes() + self._view[: n - first].tobytes()
