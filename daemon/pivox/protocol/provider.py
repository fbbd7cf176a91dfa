"""The provider seam: per connection, one `Wire` turns client events into frames and frames
into unified events, for OpenAI Realtime or Gemini Live (sans-I/O).

The daemon, the machine and the ring see only `pivox.core.events`; which wire format is spoken is
chosen by `server.provider` and lives behind this interface. A `Wire` is made for each
connection by `new_wire`; what must outlive a connection (Gemini's resumption handle and id
counter) is the `LinkState` the caller keeps and hands in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pivox.core.errors import ProtocolError
from pivox.core.events import ClientEvent, Dialect, ServerEvent
from pivox.protocol.fastpath import AudioChunk, parse_audio_delta
from pivox.protocol.gemini import GeminiCodec, LinkState
from pivox.protocol.gemini_fastpath import parse_audio
from pivox.protocol.openai import decode_server_event, encode_client_event

__all__ = ["GeminiWire", "OpenAIWire", "Wire", "new_wire"]


class Wire(Protocol):
    """One connection's codec, whatever the provider."""

    def encode(self, event: ClientEvent) -> tuple[str, ...]:
        """The frames carrying `event` (none when the provider does it by itself)."""
        ...

    def decode(self, frame: bytes) -> list[ServerEvent | ProtocolError]:
        """The events of one frame, in order; a bad frame is one ProtocolError."""
        ...

    def parse_audio(self, frame: bytes) -> AudioChunk | None:
        """The fast path: an audio frame's chunk, or None (use `decode`)."""
        ...


@dataclass(frozen=True, slots=True)
class OpenAIWire:
    """OpenAI Realtime in `dialect`: stateless, one frame per event both ways."""

    dialect: Dialect

    def encode(self, event: ClientEvent) -> tuple[str, ...]:
        return (encode_client_event(event, self.dialect),)

    def decode(self, frame: bytes) -> list[ServerEvent | ProtocolError]:
        return [decode_server_event(frame)]

    def parse_audio(self, frame: bytes) -> AudioChunk | None:
        return parse_audio_delta(frame)


class GeminiWire:
    """Gemini Live: a `GeminiCodec` (stateful both ways) and its fast path."""

    def __init__(self, codec: GeminiCodec) -> None:
        self.codec = codec

    def encode(self, event: ClientEvent) -> tuple[str, ...]:
        return self.codec.encode(event)

    def decode(self, frame: bytes) -> list[ServerEvent | ProtocolError]:
        return self.codec.decode(frame)

    def parse_audio(self, frame: bytes) -> AudioChunk | None:
        return parse_audio(frame, self.codec)


def new_wire(provider: str, *, dialect: Dialect, model: str, state: LinkState) -> Wire:
    """A fresh wire for one connection to `provider` ("openai" or "gemini")."""
    if provider == "gemini":
        return GeminiWire(GeminiCodec(model=model, state=state))
    return OpenAIWire(dialect)
