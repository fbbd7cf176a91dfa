"""The websockets layer of the local OpenAI Realtime server: handshake, wire, fault injection.

Protocol rules live in `conversation.py`, the loop that paces replies in `connection.py`; this
module only accepts connections on `/v1/realtime`, checks the key like the cloud (HTTP 401
with a JSON error body), picks the dialect (`OpenAI-Beta: realtime=v1` -> beta, else GA),
feeds frames to a `Conversation`, encodes what it returns, applies the connection's faults
(faults.py) and keeps a `ConnectionRecord` per connection for tests, bounded in bytes.
Times are `time.monotonic()`. Peer-supplied text (the model name, frames) is logged escaped
and cut; a wrong key is never logged, not even in part.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection
from websockets.http11 import Request, Response

from pivox.core.errors import ProtocolError
from pivox.core.events import (
    AudioDelta,
    ClientEvent,
    Dialect,
    Error,
    ErrorInfo,
    ItemId,
    ResponseId,
    ServerEvent,
)
from pivox.host.waits import wait_set
from pivox.protocol.openai import encode_server_event
from pivox.server.connection import ConnectionLoop, ConnectionOver, listen
from pivox.server.conversation import Conversation, RawClientEvent
from pivox.server.faults import ERROR_CLASSES, Fault, FaultPlan, faults_from_query
from pivox.server.options import ServerOptions
from pivox.server.voice import reply_audio

PATH = "/v1/realtime"
DEFAULT_MODELS: dict[Dialect, str] = {
    "ga": "gpt-realtime", "beta": "gpt-4o-realtime-preview"
}
MAX_CONNECTION_RECORDS = 1000
"""Records kept at most (besides `records_total_bytes`), so trimming them stays cheap."""
RECORD_OVERHEAD = 256
"""Bytes counted for one record entry besides its frame, and for an empty record."""
MAX_LOGGED_CHARS = 300
MALFORMED_FRAME = '{"type": "response.output_audio.delta", "delta": "AAAA'

log = logging.getLogger("pivox.server")


Received = ClientEvent | RawClientEvent | ProtocolError


@dataclass(slots=True, kw_only=True)
class ConnectionRecord:
    """What one connection did, for tests, keeping the newest entries within `limit` bytes.

    `received` holds (arrival time, decoded client event, or the ProtocolError it raised);
    `sent` the wire type of every frame sent (injected frames as `fault:<kind>`);
    `close_code` is set once the connection has ended. An entry counts its frame's length
    plus RECORD_OVERHEAD; `size` is the total, the record's own overhead included.
    """

    dialect: Dialect
    model: str
    faults: tuple[Fault, ...]
    limit: int
    received: deque[tuple[float, Received]] = field(default_factory=deque)
    sent: deque[str] = field(default_factory=deque)
    size: int = RECORD_OVERHEAD
    close_code: int | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _received_sizes: deque[int] = field(default_factory=deque)

    def note_received(self, now: float, event: Received, frame_size: int) -> None:
        """Keep one client event; drop the oldest entries beyond the limit."""
        self.received.append((now, event))
        self._received_sizes.append(frame_size + RECORD_OVERHEAD)
        self.size += frame_size + RECORD_OVERHEAD
        self._trim()

    def note_sent(self, wire_type: str) -> None:
        """Keep the type of one frame sent; drop the oldest entries beyond the limit."""
        self.sent.append(wire_type)
        self.size += len(wire_type) + RECORD_OVERHEAD
        self._trim()

    def _trim(self) -> None:
        while self.size > self.limit and self.received:
            self.received.popleft()
            self.size -= self._received_sizes.popleft()
        while self.size > self.limit and self.sent:
            self.size -= len(self.sent.popleft()) + RECORD_OVERHEAD


class RealtimeServer:
    """The local realtime server as an async context manager; `url` is set once entered."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.connections: list[ConnectionRecord] = []
        self.handshakes = 0
        """Upgrade requests seen, refused ones included (a client's retry rate shows here)."""
        self._injected: list[Fault] = []
        self._server: Server | None = None
        self._closing = asyncio.Event()
        self.port = options.port

    @property
    def url(self) -> str:
        """`ws://HOST:PORT/v1/realtime` with the port actually bound."""
        return f"ws://{self.options.host}:{self.port}{PATH}"

    def inject(self, fault: Fault) -> None:
        """Apply `fault` to the next connection only (reconnects after it are healthy)."""
        self._injected.append(fault)

    async def __aenter__(self) -> RealtimeServer:
        self._server = await listen(
            self._connection, self.options, process_request=self._check_request,
            note=" and turn faults on with ?fault=" if self.options.url_faults else "")
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("listening on %s", self.url)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._closing.set()  # ends frozen links, which no longer read the socket
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Reject a wrong path, a bad fault spec or a wrong key before the upgrade."""
        self.handshakes += 1
        url = urlsplit(request.path)
        if url.path != PATH:
            return _json_response(connection, HTTPStatus.NOT_FOUND, "not_found",
                                  f"Unknown path {url.path!r}: expected {PATH!r}.")
        try:
            faults = faults_from_query(url.query)
        except ValueError as exc:
            return _json_response(connection, HTTPStatus.BAD_REQUEST, "invalid_value", str(exc))
        if faults and not self.options.url_faults:
            return _json_response(
                connection, HTTPStatus.FORBIDDEN, "url_faults_off",
                "Faults from the URL (?fault=) are off: start the server with --url-faults.",
            )
        key = self.options.api_key
        if key is None:
            return None
        offered = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if request.headers.get("api-key") == key or offered == key:
            return None
        message = (
            "You didn't provide an API key." if not offered
            else f"Incorrect API key provided: {offered[:3]}***{offered[-4:]}."
        )
        log.info("rejected a connection from %s: %s", connection.remote_address,
                 "no API key" if not offered else "wrong API key (not logged)")
        return _json_response(connection, HTTPStatus.UNAUTHORIZED, "invalid_api_key", message)

    async def _connection(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = urlsplit(ws.request.path).query
        beta = "realtime=v1" in ws.request.headers.get("OpenAI-Beta", "")
        dialect: Dialect = "beta" if beta else "ga"
        model = parse_qs(query).get("model", [DEFAULT_MODELS[dialect]])[0]
        url_faults = faults_from_query(query) if self.options.url_faults else ()
        faults = (*self.options.faults, *self._injected, *url_faults)
        self._injected.clear()
        record = ConnectionRecord(
            dialect=dialect, model=model, faults=faults, limit=self.options.record_bytes
        )
        self.connections.append(record)
        self._trim_records()
        plan = FaultPlan(faults)
        conversation = Conversation(
            self.options, dialect=dialect, model=model, session_id="sess_" + secrets.token_hex(8),
            synthesize=self._synthesize, stale_count=plan.stale_count,
        )
        log.info("connection from %s: %s dialect, model %s, faults %s",
                 ws.remote_address, dialect, printable(model), faults or "none")
        try:
            await _Link(ws, conversation, plan, record, self._closing).run()
        finally:
            record.close_code = ws.close_code
            record.closed.set()
            self._trim_records()
            log.info("connection closed: code %s", ws.close_code)

    def _trim_records(self) -> None:
        """Keep the newest MAX_CONNECTION_RECORDS records; drop the oldest closed ones while
        all pass `records_total_bytes` (a live connection's record stays its own until it ends)."""
        del self.connections[:-MAX_CONNECTION_RECORDS]
        total = sum(record.size for record in self.connections)
        kept: list[ConnectionRecord] = []
        for record in self.connections:
            if total > self.options.records_total_bytes and record.closed.is_set():
                total -= record.size
            else:
                kept.append(record)
        self.connections[:] = kept

    def _synthesize(self, text: str) -> bytes:
        return reply_audio(self.options.reply, text, self.options.reply_ms)


class _Link(ConnectionLoop[ServerEvent]):
    """One Realtime connection: client events into the conversation, its events out, faults."""

    def __init__(
        self, ws: ServerConnection, conversation: Conversation, plan: FaultPlan,
        record: ConnectionRecord, closing: asyncio.Event,
    ) -> None:
        super().__init__(ws, conversation)
        self.closing = closing
        self.conversation = conversation
        self.plan = plan
        self.record = record
        self.last_delta: AudioDelta | None = None

    async def opening(self) -> list[ServerEvent]:
        await self._fire_due()
        return self.conversation.start()

    def receive(self, frame: str | bytes, now: float) -> list[ServerEvent]:
        log.debug("received %s", printable(frame))
        try:
            event, out = self.conversation.receive(frame, now)
        except Exception:  # a server bug must not end the connection
            log.exception("failed on a client frame")
            event = ProtocolError("the server failed on this event")
            out = [Error(event_id=self.conversation.event_id(), error=ErrorInfo(
                type="server_error", message="The server had an error processing it."
            ))]
        self.record.note_received(now, event, len(frame))
        return out

    async def send(self, event: ServerEvent) -> None:
        await self._fire_due()
        frame = encode_server_event(event, self.conversation.dialect)
        await self.ws.send(frame)
        log.debug("sent %s", printable(frame))
        self.record.note_sent(orjson.loads(frame)["type"])
        if isinstance(event, AudioDelta):
            self.last_delta = event
        self.plan.note_sent(is_audio_delta=isinstance(event, AudioDelta))
        await self._fire_due()

    async def _fire_due(self) -> None:
        for fault in self.plan.due():
            log.info("fault fires: %s", fault)
            await self._fire(fault)

    async def _fire(self, fault: Fault) -> None:
        if fault.kind == "stall":
            if await wait_set(self.gone, fault.seconds):
                raise ConnectionOver
        elif fault.kind == "close":
            await self.ws.close(fault.code, f"pivox fault: close {fault.code}")
            raise ConnectionOver
        elif fault.kind == "drop":
            self.ws.transport.abort()
            raise ConnectionOver
        elif fault.kind == "freeze":
            self.ws.transport.pause_reading()
            await wait_set(self.closing, fault.seconds)
            self.ws.transport.abort()
            raise ConnectionOver
        elif fault.kind == "error":
            kind, code, message = ERROR_CLASSES[fault.error]
            await self._send_error(ErrorInfo(type=kind, code=code, message=message))
            self.record.note_sent(f"fault:error:{fault.error}")
        elif fault.kind == "auth":
            await self._send_error(ErrorInfo(
                type="invalid_request_error", code="invalid_api_key",
                message="Incorrect API key provided.",
            ))
            self.record.note_sent("error")
            await self.ws.close(1008, "invalid_api_key")
            raise ConnectionOver
        else:
            await self.ws.send(self._fault_frame(fault))
            self.record.note_sent(f"fault:{fault.kind}")

    async def _send_error(self, info: ErrorInfo) -> None:
        """An `error` event outside the conversation's flow (a fault), with its own id."""
        error = Error(event_id=self.conversation.event_id(), error=info)
        await self.ws.send(encode_server_event(error, self.conversation.dialect))

    def _fault_frame(self, fault: Fault) -> str:
        """The one frame a malformed, bad_base64, unknown or oversized fault sends."""
        if fault.kind == "malformed":
            return MALFORMED_FRAME
        if fault.kind == "bad_base64":
            delta = self.last_delta or AudioDelta(
                response_id=ResponseId("resp_none"), item_id=ItemId("item_none"),
                output_index=0, content_index=0, audio=b"",
            )
            wire = orjson.loads(encode_server_event(delta, self.conversation.dialect))
            return orjson.dumps({**wire, "delta": "not base64!"}).decode()
        wire_type = "pivox.fault.unknown" if fault.kind == "unknown" else "pivox.fault.oversized"
        frame = orjson.dumps({"type": wire_type, "event_id": "event_fault", "padding": ""})
        padding = max(0, fault.size - len(frame)) if fault.kind == "oversized" else 0
        return frame.decode().replace('"padding":""', f'"padding":"{"x" * padding}"')



def printable(text: str | bytes, limit: int = MAX_LOGGED_CHARS) -> str:
    """Peer-supplied text for a log line: control characters escaped, cut to `limit`."""
    shown = repr(text[:limit])
    return shown if len(text) <= limit else f"{shown}... ({len(text)} in all)"


def _json_response(
    connection: ServerConnection, status: HTTPStatus, code: str, message: str
) -> Response:
    """An HTTP error shaped like the cloud's: `{"error": {message, type, code, param}}`."""
    body = orjson.dumps({"error": {
        "message": message, "type": "invalid_request_error", "code": code, "param": None,
    }}).decode()
    response = connection.respond(status, body)
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response
