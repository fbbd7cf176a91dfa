"""Fixtures for the bundled realtime server: a running server and a plain-websockets client.

`realtime_server`: a `RealtimeServer` on a free loopback port, fast and short (speed 0,
600 ms ramp replies, 100 ms deltas), URL faults allowed. `start_realtime_server(**options)`:
the same with other `ServerOptions` fields, as an async context manager. `WireClient`: a raw
JSON client that checks every frame it receives decodes into pivox's unified events and
validates strictly against the openai SDK's model for its type.
"""

from __future__ import annotations

import base64
import math
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from pivox.core.errors import ProtocolError
from pivox.core.events import Dialect, ServerEvent, Unknown
from pivox.protocol.openai import decode_server_event
from pivox.server import RealtimeServer, ServerOptions
from tests.sdk_models import server_event_model

# URL faults on: tests ask for them with ?fault=
TEST_OPTIONS: dict[str, Any] = {
    "port": 0, "speed": 0.0, "reply": "ramp", "reply_ms": 600, "url_faults": True
}
# Wire types the unified model keeps as Unknown by design (PROTOCOL.md).
UNKNOWN_BY_DESIGN = frozenset({
    "response.content_part.added", "response.content_part.done", "conversation.item.truncated",
    "conversation.item.retrieved", "conversation.item.deleted",
})
SAMPLE_RATE = 24000


def pcm_tone(ms: int, *, amplitude: int = 8000, hz: float = 440.0) -> bytes:
    """`ms` of a sine tone, PCM16 mono 24 kHz: loud enough to be speech at threshold 0.5."""
    n = SAMPLE_RATE * ms // 1000
    samples = (round(amplitude * math.sin(2 * math.pi * hz * i / SAMPLE_RATE)) for i in range(n))
    return b"".join(s.to_bytes(2, "little", signed=True) for s in samples)


def pcm_silence(ms: int) -> bytes:
    """`ms` of digital silence, PCM16 mono 24 kHz."""
    return bytes(SAMPLE_RATE * ms // 1000 * 2)


@dataclass
class WireClient:
    """A raw Realtime client: sends dicts, receives dicts, keeps the decoded events."""

    ws: ClientConnection
    dialect: Dialect = "ga"
    events: list[ServerEvent] = field(default_factory=list)
    strict: bool = True

    async def send(self, type: str, **fields: Any) -> None:
        await self.ws.send(orjson.dumps({"type": type, **fields}).decode())

    async def append(self, pcm: bytes, chunk_ms: int = 100) -> None:
        """Append `pcm` as `input_audio_buffer.append` events of `chunk_ms` each."""
        step = SAMPLE_RATE * chunk_ms // 1000 * 2
        for offset in range(0, len(pcm), step):
            audio = base64.b64encode(pcm[offset : offset + step]).decode()
            await self.send("input_audio_buffer.append", audio=audio)

    async def recv_raw(self) -> str | bytes:
        return await self.ws.recv()

    async def recv(self) -> dict[str, Any]:
        """The next frame as a dict; in strict mode it must decode to a known unified event
        and validate strictly as the openai SDK's model for its type (tests/sdk_models.py)."""
        frame = await self.ws.recv()
        event = decode_server_event(frame)
        if self.strict:
            assert not isinstance(event, ProtocolError), (event, frame[:300])
            assert not isinstance(event, Unknown) or event.type in UNKNOWN_BY_DESIGN, frame[:300]
            server_event_model(frame, self.dialect)
        if not isinstance(event, ProtocolError):
            self.events.append(event)
        return orjson.loads(frame)  # type: ignore[no-any-return]

    async def recv_until(self, wire_type: str) -> list[dict[str, Any]]:
        """Every frame up to and including the first of `wire_type`."""
        frames = [await self.recv()]
        while frames[-1]["type"] != wire_type:
            frames.append(await self.recv())
        return frames


@asynccontextmanager
async def wire_client(
    url: str, *, beta: bool = False, key: str | None = None, **kwargs: Any
) -> AsyncIterator[WireClient]:
    """Connect like pivox does (Bearer key, beta header when asked)."""
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if beta:
        headers["OpenAI-Beta"] = "realtime=v1"
    async with connect(url, additional_headers=headers, **kwargs) as ws:
        yield WireClient(ws, "beta" if beta else "ga")


StartServer = Callable[..., AbstractAsyncContextManager[RealtimeServer]]


@pytest_asyncio.fixture
async def start_realtime_server() -> StartServer:
    """A factory: `async with start_realtime_server(reply_ms=300) as server: ...`."""

    def start(**options: Any) -> AbstractAsyncContextManager[RealtimeServer]:
        return RealtimeServer(ServerOptions(**{**TEST_OPTIONS, **options}))

    return start


@pytest_asyncio.fixture
async def realtime_server() -> AsyncIterator[RealtimeServer]:
    """A running server with the fast test options."""
    async with RealtimeServer(ServerOptions(**TEST_OPTIONS)) as server:
        yield server
