"""One connection's loop, shared by both bundled servers: client frames in, due output sent on time.

A frame is handed to `receive` as it arrives (a task of its own, so a reply streaming out never
delays input); the conversation's `tick(now)` yields what is due, `next_deadline()` says when
to look again. A subclass supplies only its wire: `receive`, `send` and, if it speaks first,
`opening`. Times are `time.monotonic()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from typing import Any, Generic, Protocol, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pivox.host.waits import wait_set
from pivox.server.options import ServerOptions

MAX_QUEUED_FRAMES = 4
"""Frames websockets reads ahead per connection (16 by default): at most 4 x 16 MiB.

Compression is off: with permessage-deflate, one read of the socket held hundreds of
highly compressible frames, all inflated at once past this bound (137 MiB peak from 1 MiB
frames of silence); clients fall back to plain frames, as the openai SDK asks anyway.
"""

log = logging.getLogger("pivox.server")



async def listen(handler: Any, options: ServerOptions, *, process_request: Any,
                 ssl_context: ssl.SSLContext | None = None, note: str = "") -> Server:
    """Open a bundled server's socket with the bounds both keep (frame size, read-ahead, no
    compression); warn when it takes any key beyond loopback (`note` adds to the warning)."""
    if exposed(options.host, options.api_key):
        log.warning("serving on %s without an API key: anyone who can reach it can use "
                    "it%s; pass --api-key or bind to loopback", options.host, note)
    return await serve(
        handler, options.host, options.port, ssl=ssl_context, process_request=process_request,
        max_size=options.max_frame_bytes, max_queue=MAX_QUEUED_FRAMES, compression=None,
    )


def exposed(host: str, api_key: str | None) -> bool:
    """True when the server would take any key on an address other hosts may reach."""
    if api_key is not None or host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return True


Out = TypeVar("Out")
Out_co = TypeVar("Out_co", covariant=True)


class Paced(Protocol[Out_co]):
    """A conversation as the loop sees it: what is due now, and when more will be."""

    def tick(self, now: float) -> Iterable[Out_co]: ...

    def next_deadline(self) -> float | None: ...


class ConnectionOver(Exception):
    """The server ends the connection (a close it sends, a fault)."""


class ConnectionLoop(ABC, Generic[Out]):
    """Serve one connection until the client leaves or `ConnectionOver` is raised."""

    def __init__(self, ws: ServerConnection, conversation: Paced[Out]) -> None:
        self.ws = ws
        self._paced = conversation
        self.outbox: deque[Out] = deque()
        self.wake = asyncio.Event()
        self.gone = asyncio.Event()
        """Set once the client's side has closed (no more frames will come)."""

    async def opening(self) -> Iterable[Out]:
        """What the server sends first, before any frame of the client's."""
        return ()

    @abstractmethod
    def receive(self, frame: str | bytes, now: float) -> Iterable[Out]:
        """One client frame: what the server answers (recorded and logged as the wire wants)."""

    @abstractmethod
    async def send(self, out: Out) -> None:
        """Send one message; raise `ConnectionOver` when it ends the connection."""

    async def run(self) -> None:
        """Serve until the client leaves or the server ends the connection."""
        receiver = asyncio.create_task(self._receive())
        try:
            self.outbox.extend(await self.opening())
            while not receiver.done():
                self.wake.clear()
                self.outbox.extend(self._paced.tick(time.monotonic()))
                while self.outbox:
                    await self.send(self.outbox.popleft())
                deadline = self._paced.next_deadline()
                if deadline is not None and deadline <= time.monotonic():
                    await asyncio.sleep(0)  # let client frames in between chunks
                    continue
                timeout = None if deadline is None else deadline - time.monotonic()
                await wait_set(self.wake, timeout)
        except (ConnectionOver, ConnectionClosed):
            pass
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver

    async def _receive(self) -> None:
        try:
            async for frame in self.ws:
                self.outbox.extend(self.receive(frame, time.monotonic()))
                self.wake.set()
        except ConnectionClosed:
            pass
        finally:
            self.gone.set()
            self.wake.set()
