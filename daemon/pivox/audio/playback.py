"""Reply audio on its way to the speaker: the ring first, a bounded backlog for what does not fit.

The receiver never waits for room in the ring. While it waited, websockets stopped reading
the socket (its queue of `max_queue` frames full), the server's pongs sat behind seconds of
audio in TCP order, and a reply sent faster than real time lost the link to "1011 keepalive
ping timeout" some 20 s in. Now a delta the ring cannot take waits here as PCM, up to
`limit` bytes (the PCM of `audio.max_reply_s`); `pump()` moves it on as the speaker frees
room, in order, so nothing of a reply overtakes the rest. Past the limit the rest of that
reply is dropped and logged once: memory stays bounded whatever the server sends.

A response may open at most `max_items` audio items (a real one opens one or two): deltas of
further items are dropped, logged once, so per-item bookkeeping (the ring's accounts, the
turn's item list) stays small whatever ids a server invents.

Producer side of `AudioRing` only: the asyncio loop calls every method here.
"""

from __future__ import annotations

import logging
from collections import deque

from pivox.core.ring import AudioRing
from pivox.protocol.fastpath import AudioChunk, decode_audio, decode_into_ring

log = logging.getLogger("pivox.playback")

MAX_RESPONSE_ITEMS = 16
"""Audio items one response may open; deltas of more are dropped."""


class Playback:
    """Writes reply PCM to the ring in order, holding what does not fit in a bounded backlog."""

    def __init__(self, ring: AudioRing, limit: int, *, max_items: int = MAX_RESPONSE_ITEMS) -> None:
        """`limit`: bytes the backlog may hold; `max_items`: audio items per response."""
        if limit < 0 or max_items <= 0:
            raise ValueError(f"limit must be >= 0 and max_items > 0, got {limit}, {max_items}")
        self.ring = ring
        self.limit = limit
        self.max_items = max_items
        self._backlog: deque[tuple[str, memoryview]] = deque()
        self._pending = 0
        self._finished = False
        self._response: str | None = None
        self._items: set[str] = set()
        self._refused = False
        self._overflow = False
        self.dropped = 0
        """PCM bytes dropped past the backlog limit, ever."""

    @property
    def pending(self) -> int:
        """PCM bytes waiting in the backlog."""
        return self._pending

    def admit(self, response_id: str, item_id: str) -> bool:
        """True if a delta of `item_id` may play: its response has not opened too many items."""
        if response_id != self._response:
            self._response, self._overflow, self._refused = response_id, False, False
            self._items.clear()
        items = self._items
        if item_id in items:
            return True
        if len(items) < self.max_items:
            items.add(item_id)
            return True
        if not self._refused:
            self._refused = True
            log.warning("response %s opened more than %d audio items; dropping the audio of "
                        "the rest", response_id, self.max_items,
                        extra={"RESPONSE_ID": response_id, "PIVOX_EVENT": "too_many_items"})
        return False

    @property
    def direct(self) -> bool:
        """True while nothing waits: a decoder may write straight into the ring."""
        return not self._backlog

    def queue(self, chunk: AudioChunk) -> bool:
        """Queue a delta read by the fast path: decoded straight into the ring while nothing
        waits, else after the backlog. False (nothing queued) when its span is not plain
        base64: the caller decodes the frame in full."""
        if self.direct:
            rest = decode_into_ring(chunk, self.ring)  # the PCM the ring had no room for
            if rest is None:
                return False
            self.hold(rest, chunk.item_id, chunk.response_id)
            return True
        pcm = decode_audio(chunk)
        if pcm is None:
            return False
        self.write(pcm, chunk.item_id, chunk.response_id)
        return True

    def write(self, pcm: bytes | memoryview, item_id: str, response_id: str) -> None:
        """Queue `pcm` after everything queued before it: into the ring, else the backlog."""
        if not self._backlog:
            written = self.ring.write(pcm, item_id)
            if written == len(pcm):
                return
            pcm = memoryview(pcm)[written:]
        self.hold(pcm, item_id, response_id)

    def hold(self, pcm: bytes | memoryview, item_id: str, response_id: str) -> None:
        """Put `pcm`, which the ring had no room for, in the backlog (up to the limit)."""
        if not pcm:
            return
        self._finished = False
        room = self.limit - self._pending
        if len(pcm) > room:
            self.dropped += len(pcm) - room
            if not self._overflow:
                self._overflow = True
                log.warning("reply %s is longer than the backlog holds (%d bytes, "
                            "audio.max_reply_s); dropping the rest of it", response_id,
                            self.limit,
                            extra={"RESPONSE_ID": response_id, "PIVOX_EVENT": "reply_too_long"})
            pcm = memoryview(pcm)[:room]
        if pcm:
            self._backlog.append((item_id, memoryview(bytes(pcm))))  # owns its bytes
            self._pending += len(pcm)

    def pump(self) -> None:
        """Move backlog into the ring as far as it has room (every tick, and after a delta)."""
        backlog, ring = self._backlog, self.ring
        while backlog and ring.free:
            item_id, pcm = backlog[0]
            written = ring.write(pcm, item_id)
            self._pending -= written
            if written < len(pcm):
                backlog[0] = (item_id, pcm[written:])  # a view: no copy
                break
            backlog.popleft()
        if self._finished and not backlog:
            self._finished = False
            ring.finish()

    def finish(self) -> None:
        """No more audio for now: the ring is told so once the backlog has gone into it."""
        self._finished = True
        self.pump()

    def clear(self) -> int:
        """Drop the backlog and the ring's queue (barge-in); return the bytes dropped."""
        dropped = self._pending
        self._backlog.clear()
        self._pending = 0
        self._finished = False
        return dropped + self.ring.clear()
