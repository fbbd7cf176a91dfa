"""AudioRing: the speaker's buffer, one preallocated bytearray shared by exactly two threads.

Single-producer / single-consumer contract:

- the producer is the asyncio loop: it alone calls `write`, `tail_room`, `commit`, `clear`,
  `finish` and `forget`;
- the consumer is PortAudio's output callback thread: it alone calls `read_into`;
- either side may read the properties and `written` / `played` at any time.

Every operation that changes what is queued holds one `threading.Lock`, so `clear` (barge-in,
from the loop) and `read_into` (the speaker) never see half an update; `read_into` holds it
for its copy, time linear in the bytes copied, and never across a blocking call. The producer
copies into free bytes, which the consumer never reads, without the lock, and then queues
them under it (`commit`). The ring never overwrites unplayed audio: when it is full, `write`
accepts fewer bytes than offered and the producer waits for space and writes the rest itself.

Accounting is per item and byte-exact across wrap-around and `clear`: `written(item)` counts
every byte `write` accepted, `played(item)` every byte `read_into` handed to the speaker;
bytes dropped by `clear` stay written and are never played. Accounting is kept for the
`max_items` most recent items: a new item evicts the item whose queued bytes ran out longest
ago (items with queued bytes are kept past the cap); evicted items, and items passed to
`forget`, read as 0; an item written again after `forget` starts again from 0. Every
operation's cost is independent of how many items came before (an ordered set of the items
with nothing queued, kept as bytes play out): a server inventing item ids costs nothing more.

A C decoder may write straight into the ring, as `write` itself does: the buffer never moves
(`address`), and the producer may fill the free bytes `tail_room()` names and then `commit`
them, which queues them exactly as `write` would have.

Underruns: the ring is *expecting* audio from the moment `write` accepts a byte until
`clear()` or `finish()` (the producer's "no more audio for now", on AudioDone/ResponseDone).
A `read_into` that copies fewer bytes than asked while expecting counts one underrun, and ends
the expectation until the next accepted write: a starved speaker counts once per gap, not once
per callback.
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict, deque

__all__ = ["BYTES_PER_MS", "AudioRing"]


BYTES_PER_MS = 48
"""PCM16 mono at 24 kHz: the speaker's audio, the ring's unit."""


class AudioRing:
    """A bounded byte ring of PCM for one producer and one consumer thread."""

    __slots__ = (
        "_address",
        "_buf",
        "_capacity",
        "_expecting",
        "_head",
        "_idle",
        "_items",
        "_last_played",
        "_lock",
        "_max_items",
        "_segments",
        "_size",
        "_tail",
        "_underruns",
        "_zeros",
    )

    def __init__(self, capacity: int, *, max_items: int = 64) -> None:
        """Preallocate `capacity` bytes; keep accounting for `max_items` recent items."""
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        if max_items <= 0:
            raise ValueError(f"max_items must be positive, got {max_items}")
        self._capacity = capacity
        self._max_items = max_items
        self._buf = memoryview(bytearray(capacity))  # pins the bytearray: it never moves
        self._address = ctypes.addressof(ctypes.c_char.from_buffer(self._buf))
        self._zeros = memoryview(b"")
        self._head = 0  # index of the next byte to play
        self._size = 0  # bytes queued
        self._tail = 0  # index of the next byte to write: the producer's alone
        self._segments: deque[_Run] = deque()  # queued bytes in play order
        self._items: dict[str, _Account] = {}
        self._idle: OrderedDict[str, None] = OrderedDict()  # items with nothing queued
        self._last_played: str | None = None
        self._expecting = False
        self._underruns = 0
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        """Size of the buffer in bytes, fixed at construction."""
        return self._capacity

    @property
    def address(self) -> int:
        """Where the buffer starts in memory, for a C decoder filling `tail_room()`."""
        return self._address

    @property
    def available(self) -> int:
        """Bytes queued and not yet played."""
        return self._size

    @property
    def free(self) -> int:
        """Bytes `write` would accept now."""
        return self._capacity - self._size

    @property
    def underruns(self) -> int:
        """Short reads while audio was expected (see the module docstring)."""
        return self._underruns

    @property
    def current_item(self) -> str | None:
        """Item of the next byte to play; if nothing is queued, of the last byte played."""
        with self._lock:
            if self._segments:
                return self._segments[0].item_id
            return self._last_played

    def write(self, data: bytes | bytearray | memoryview, item_id: str) -> int:
        """Copy as much of `data` as fits, as audio of `item_id`; return the bytes accepted."""
        src = _as_bytes_view(data) if type(data) is memoryview else data
        tail, room = self.tail_room()
        if len(src) <= room:  # the usual case: all of it, in one piece
            self._buf[tail : tail + len(src)] = src
            self.commit(len(src), item_id)
            return len(src)
        view = src if isinstance(src, memoryview) else memoryview(src)
        written = 0
        while room and written < len(view):  # up to the buffer's end, then from its start
            n = min(room, len(view) - written)
            self._buf[tail : tail + n] = view[written : written + n]
            self.commit(n, item_id)
            written += n
            tail, room = self.tail_room()
        return written

    def tail_room(self) -> tuple[int, int]:
        """(offset, length) of the free bytes after the queued audio, up to the buffer's end.

        The producer may fill them (at `address + offset`) and then `commit` what it filled.
        No lock: the tail is the producer's, and the consumer only ever makes more room.
        """
        tail, free = self._tail, self._capacity - self._size
        room = self._capacity - tail
        return tail, room if room < free else free  # no min(): the hot path (measured)

    def commit(self, n: int, item_id: str) -> None:
        """Queue the `n` bytes the producer put at `tail_room()`'s offset, as audio of `item_id`."""
        self._lock.acquire()  # not `with`: half the cost, on the path of every audio delta
        try:
            capacity, size, tail = self._capacity, self._size, self._tail
            if n <= 0 or n > capacity - tail or n > capacity - size:
                if n == 0:
                    return
                room = self.tail_room()[1]
                raise ValueError(f"cannot commit {n} bytes to a tail room of {room}")
            self._size = size + n
            self._tail = tail + n if tail + n < capacity else 0
            self._expecting = True
            segments = self._segments
            if segments and (run := segments[-1]).account is self._items.get(item_id):
                run.account.written += n  # more of the item queued last: one run, one account
                run.account.queued += n
                run.size += n
            else:
                self._account_written(item_id, n)
        finally:
            self._lock.release()

    def read_into(self, out: bytearray | memoryview) -> int:
        """Fill `out` with queued audio, zero-fill the rest; return the audio bytes copied."""
        dst = _as_bytes_view(out) if type(out) is memoryview else out
        want = len(dst)
        with self._lock:
            n = min(want, self._size)
            if n:
                head = self._head
                first = min(n, self._capacity - head)
                dst[:first] = self._buf[head : head + first]
                if n > first:
                    dst[first:n] = self._buf[: n - first]
                self._head = (head + n) % self._capacity
                self._size -= n
                self._account_played(n)
            if n < want:
                if len(self._zeros) < want:
                    self._zeros = memoryview(bytes(want))
                dst[n:want] = self._zeros[: want - n]
                if self._expecting:
                    self._underruns += 1
                    self._expecting = False
            return n

    def clear(self) -> int:
        """Drop all unplayed audio (barge-in); return the bytes dropped."""
        with self._lock:
            dropped = self._size
            self._head = self._tail = self._size = 0
            for run in self._segments:  # linear in the runs dropped, like the bytes
                self._unqueue(run, run.size)
            self._segments.clear()
            self._expecting = False
            return dropped

    def finish(self) -> None:
        """Say no more audio is coming for now: the queue still plays, a gap is no underrun."""
        with self._lock:
            self._expecting = False

    def written(self, item_id: str) -> int:
        """Bytes of `item_id` ever accepted by `write` (0 if unknown or forgotten)."""
        with self._lock:
            account = self._items.get(item_id)
            return account.written if account else 0

    def played(self, item_id: str) -> int:
        """Bytes of `item_id` handed to the speaker by `read_into` (0 if unknown or forgotten)."""
        with self._lock:
            account = self._items.get(item_id)
            return account.played if account else 0

    def forget(self, item_id: str) -> None:
        """Drop the accounting of `item_id`; its queued bytes still play, counted nowhere."""
        with self._lock:
            self._items.pop(item_id, None)
            self._idle.pop(item_id, None)

    def _account_written(self, item_id: str, n: int) -> None:
        account = self._items.get(item_id)
        if account is None:
            self._evict()
            account = self._items[item_id] = _Account()
        else:
            self._idle.pop(item_id, None)
        account.written += n
        account.queued += n
        segments = self._segments
        if segments and segments[-1].account is account:
            segments[-1].size += n
        else:
            segments.append(_Run(item_id, account, n))

    def _evict(self) -> None:
        # Make room by evicting the items whose queued bytes ran out longest ago; items that
        # still have queued bytes are kept past the cap (their number is bounded by the
        # capacity). O(1) per item evicted: `_idle` holds exactly the items with none queued.
        items, idle = self._items, self._idle
        while len(items) >= self._max_items and idle:
            del items[idle.popitem(last=False)[0]]

    def _unqueue(self, run: _Run, n: int) -> None:
        """`n` queued bytes of `run` are gone (played or dropped)."""
        account = run.account
        account.queued -= n
        if not account.queued and self._items.get(run.item_id) is account:
            self._idle[run.item_id] = None

    def _account_played(self, n: int) -> None:
        segments = self._segments
        while n:
            run = segments[0]
            take = min(n, run.size)
            run.account.played += take
            self._last_played = run.item_id
            n -= take
            run.size -= take
            self._unqueue(run, take)
            if not run.size:
                segments.popleft()


class _Account:
    """Bytes of one item accepted, played, and queued now."""

    __slots__ = ("played", "queued", "written")

    def __init__(self) -> None:
        self.written = 0
        self.played = 0
        self.queued = 0


class _Run:
    """Consecutive queued bytes of one item; counts into the account current when written."""

    __slots__ = ("account", "item_id", "size")

    def __init__(self, item_id: str, account: _Account, size: int) -> None:
        self.item_id = item_id
        self.account = account
        self.size = size


def _as_bytes_view(view: memoryview) -> memoryview:
    """`view` itself, or a flat unsigned-byte view of it if it has another format."""
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")
