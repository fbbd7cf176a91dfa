"""One connection's loop, shared by both bundled servers: client frames in, due output sent on time.

A frame is handed to `receive` as it arrives (a task of its own, so a reply streaming out never
delays input); the conversation's `tick(now)` yields what is due, `next_deadline()` says when
to look again. A subclass supplies only its wire: `receive`, `send` and, if it speaks first,
`opening`. Times are `time.monotonic()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout)
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
