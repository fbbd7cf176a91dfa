"""The local server speaking Gemini Live (`pivox serve --provider gemini`).

The same wire format as Google's v1beta `BidiGenerateContent` WebSocket (see
`pivox.protocol.gemini`), for demos and tests with no key: the client's first message must be
`setup`, answered by `setupComplete` and a `sessionResumptionUpdate`; `realtimeInput.audio`
(16 kHz) goes through the energy VAD of `vad.py` (after resampling to its 24 kHz) unless the
setup disabled automatic activity detection, in which case `activityStart` / `activityEnd`
delimit a turn; speech (or `activityStart`) over a streaming reply stops it with
`serverContent.interrupted`. A reply is `inputTranscription` (what was heard), then audio
chunks in `serverContent.modelTurn` with `outputTranscription` words (`voice.py`, paced by
`ServerOptions.speed`), `generationComplete`, `turnComplete` and a new resumption handle.
`tool_call` makes the first reply a `toolCall` instead, answered by `toolResponse`. With
`go_away_s` the server sends `goAway` that long after a connection opens and closes it
`time_left_s` later. A bad key is accepted at the handshake and closed with 1007 "API key not
valid", as Google's server does; a bad message or a first message other than `setup` closes
with 1007 too. A resumed session (`setup.sessionResumption.handle`) continues its turn count.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pybase64
from websockets.asyncio.server import Server, ServerConnection
from websockets.http11 import Request, Response

from pivox.core.errors import ProtocolError
from pivox.core.events import ServerVad
from pivox.protocol.gemini import (
    ActivityEnd,
    ActivityStart,
    AudioIn,
    ClientMessage,
    ClientText,
    Setup,
    ToolResponse,
    decode_client_message,
)
from pivox.server.connection import ConnectionLoop, ConnectionOver, listen
from pivox.server.options import ServerOptions
from pivox.server.pacing import PacedReply
from pivox.server.vad import EnergyVad, SpeechStart
from pivox.server.voice import reply_audio, resample

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
BAD_KEY = "API key not valid. Please pass a valid API key."
INVALID_CLOSE = 1007
OUTPUT_MIME = "audio/pcm;rate=24000"
INPUT_RATE = 16000
BYTES_PER_SECOND_IN = INPUT_RATE * 2

log = logging.getLogger("pivox.server.gemini")

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Close:
    """End the connection with this close code and reason."""

    code: int
    reason: str


Out = Message | Close


@dataclass(slots=True)
class _Memory:
    """What a resumable session keeps across connections."""

    turns: int = 0


class GeminiConversation:
    """One connection's Gemini session as a pure object: frames in, messages out."""

    def __init__(
        self, options: ServerOptions, *, synthesize: Callable[[str], bytes],
        sessions: dict[str, _Memory], now: float, go_away_s: float | None = None,
        time_left_s: float = 2.0,
    ) -> None:
        self.options = options
        self.setup: Setup | None = None
        self.resumed = False
        self._synthesize = synthesize
        self._sessions = sessions
        self._memory = _Memory()
        self._heard = 0  # input bytes (16 kHz) of the current user turn
        self._vad: EnergyVad | None = None
        self._stream: PacedReply | None = None
        self._tool_called = False
        self._go_away_at = None if go_away_s is None else now + go_away_s
        self._close_at: float | None = None
        self._time_left_s = time_left_s

    @property
    def manual(self) -> bool:
        """Automatic activity detection is off: the client marks turns."""
        return self.setup is not None and self.setup.session.turn_detection is None

    # ------------------------------------------------------------------ input

    def receive(self, frame: str | bytes, now: float) -> tuple[ClientMessage | ProtocolError,
                                                                list[Out]]:
        """One client frame: what it was and what the server answers."""
        message = decode_client_message(frame)
        if isinstance(message, ProtocolError):
            return message, [Close(INVALID_CLOSE, _reason(str(message)))]
        if self.setup is None:
            if not isinstance(message, Setup):
                return message, [Close(INVALID_CLOSE, "setup must be the first message")]
            return message, self._setup(message)
        if isinstance(message, Setup):
            return message, [Close(INVALID_CLOSE, "setup may be sent only once")]
        if isinstance(message, AudioIn):
            return message, self._audio(message.audio, now)
        if isinstance(message, ActivityStart):
            self._heard = 0
            return message, self._interrupt()
        if isinstance(message, ActivityEnd):
            return message, self._user_turn_done(now)
        if isinstance(message, ClientText):
            return message, [*self._interrupt(), *self._reply(f"You said: {message.text[:120]}",
                                                              now)]
        assert isinstance(message, ToolResponse)
        (call_id, name, output), *_ = message.responses or (("", None, ""),)
        return message, self._reply(f"The {name or call_id} tool said: {output[:120]}", now)

    def _setup(self, setup: Setup) -> list[Out]:
        if setup.handle is not None:
            memory = self._sessions.get(setup.handle)
            if memory is None:
                return [Close(INVALID_CLOSE, "session resumption handle is not valid")]
            self._memory, self.resumed = memory, True
        self.setup = setup
        vad = setup.session.turn_detection
        if isinstance(vad, ServerVad):
            self._vad = EnergyVad(threshold=vad.threshold,
                                  prefix_padding_ms=vad.prefix_padding_ms,
                                  silence_duration_ms=vad.silence_duration_ms)
        return [{"setupComplete": {}}, self._handle()]

    def _handle(self) -> Message:
        handle = f"handle_{secrets.token_hex(6)}"
        self._sessions[handle] = self._memory
        return {"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}}

    def _audio(self, pcm: bytes, now: float) -> list[Out]:
        self._heard += len(pcm)
        if self._vad is None:
            return []
        out: list[Out] = []
        for edge in self._vad.feed(resample(pcm, INPUT_RATE, 24000)):
            if isinstance(edge, SpeechStart):
                self._heard = len(pcm)
                out += self._interrupt()
            else:
                out += self._user_turn_done(now)
        return out

    def _interrupt(self) -> list[Out]:
        if self._stream is None:
            return []
        self._stream = None
        return [{"serverContent": {"interrupted": True}}]

    def _user_turn_done(self, now: float) -> list[Out]:
        seconds = self._heard / BYTES_PER_SECOND_IN
        self._heard = 0
        heard: Message = {"serverContent": {"inputTranscription": {
            "text": f"({seconds:.1f} seconds of audio)", "finished": True}}}
        return [heard, *self._reply(f"I heard {seconds:.1f} seconds of audio", now)]

    def _reply(self, text: str, now: float) -> list[Out]:
        assert self.setup is not None
        tool = self.options.tool_call
        tools = self.setup.session.tools
        if tool is not None and not self._tool_called and any(t.name == tool for t in tools):
            self._tool_called = True
            args = orjson.loads(self.options.tool_arguments)
            return [{"toolCall": {"functionCalls": [
                {"id": f"call_{secrets.token_hex(4)}", "name": tool, "args": args}]}}]
        self._memory.turns += 1
        text = f"{text}, turn {self._memory.turns}"
        self._stream = PacedReply(audio=self._synthesize(text), words=text.split(), started=now,
                                  chunk_ms=self.options.chunk_ms, speed=self.options.speed)
        return []

    # ------------------------------------------------------------------ output

    def next_deadline(self) -> float | None:
        """When `tick` next has something to send (None: only input can cause output)."""
        times = [t for t in (self._go_away_at, self._close_at) if t is not None]
        if self._stream is not None:
            times.append(self._stream.due())
        return min(times, default=None)

    def tick(self, now: float) -> list[Out]:
        """What is due at `now`: the next audio chunk, the end of a reply, goAway, the close."""
        out: list[Out] = []
        if self._go_away_at is not None and now >= self._go_away_at:
            self._go_away_at = None
            self._close_at = now + self._time_left_s
            out.append({"goAway": {"timeLeft": f"{self._time_left_s:g}s"}})
        if self._close_at is not None and now >= self._close_at:
            return [*out, Close(1000, "session time limit reached")]
        stream = self._stream
        deadline = self.next_deadline()
        if stream is None or deadline is None or deadline > now:
            return out
        chunk = stream.take()
        content: Message = {"modelTurn": {"parts": [{"inlineData": {
            "mimeType": OUTPUT_MIME, "data": pybase64.b64encode(chunk).decode()}}]}}
        words_due = len(stream.words) * stream.sent // max(1, len(stream.audio))
        if words_due > stream.words_sent:
            text = " ".join(stream.words[stream.words_sent : words_due])
            content["outputTranscription"] = {"text": text if not stream.words_sent else " " + text}
            stream.words_sent = words_due
        out.append({"serverContent": content})
        if stream.finished:
            self._stream = None
            out += [{"serverContent": {"generationComplete": True}},
                    {"serverContent": {"turnComplete": True}}, self._handle()]
        return out


def _reason(text: str) -> str:
    """A close reason within the 123 bytes a close frame allows."""
    return text.encode()[:120].decode(errors="ignore")


@dataclass(slots=True, kw_only=True)
class GeminiConnectionRecord:
    """What one connection did, for tests: messages received (at most `record_bytes` of
    their frames, the oldest dropped first) and the kinds sent (as many)."""

    key_ok: bool
    record_bytes: int
    received: deque[tuple[float, ClientMessage | ProtocolError]] = field(default_factory=deque)
    sent: deque[str] = field(default_factory=deque)
    setup: Setup | None = None
    resumed: bool = False
    close_code: int | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _sizes: deque[int] = field(default_factory=deque)
    _kept: int = 0

    def add(self, now: float, message: ClientMessage | ProtocolError, size: int) -> None:
        """Keep one received message; drop the oldest past `record_bytes` of frames."""
        self.received.append((now, message))
        self._sizes.append(size)
        self._kept += size
        while self._kept > self.record_bytes and len(self._sizes) > 1:
            self._kept -= self._sizes.popleft()
            self.received.popleft()

    def note_sent(self, kind: str) -> None:
        """Keep the kind of one message sent (as many as frames received may be kept)."""
        self.sent.append(kind)
        if len(self.sent) > self.record_bytes // 64:
            self.sent.popleft()


class GeminiServer:
    """The local Gemini Live server as an async context manager; `url` is set once entered.

    `ssl` serves wss:// (the google-genai client insists on TLS when it has an API key).
    """

    def __init__(self, options: ServerOptions, *, go_away_s: float | None = None,
                 time_left_s: float = 2.0, ssl: Any = None) -> None:
        self.options = options
        self.go_away_s = go_away_s
        self.time_left_s = time_left_s
        self.ssl = ssl
        self.connections: list[GeminiConnectionRecord] = []
        self.sessions: dict[str, _Memory] = {}
        self._server: Server | None = None
        self.port = options.port

    @property
    def base_url(self) -> str:
        """`ws://HOST:PORT` (or wss://) with the port actually bound."""
        return f"{'wss' if self.ssl else 'ws'}://{self.options.host}:{self.port}"

    @property
    def url(self) -> str:
        """The full endpoint URL, as pivox's `[gemini] url` takes it."""
        return self.base_url + PATH

    async def __aenter__(self) -> GeminiServer:
        self._server = await listen(self._connection, self.options, ssl_context=self.ssl,
                                    process_request=self._check_request)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("listening on %s", self.url)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path != PATH:
            body = orjson.dumps({"error": {"code": 404, "message": f"unknown path {path!r}",
                                           "status": "NOT_FOUND"}}).decode()
            return connection.respond(HTTPStatus.NOT_FOUND, body)
        return None

    def _key_ok(self, request: Request) -> bool:
        key = self.options.api_key
        if key is None:
            return True
        offered = request.headers.get("x-goog-api-key") or parse_qs(
            urlsplit(request.path).query).get("key", [""])[0]
        return secrets.compare_digest(offered.encode(), key.encode())

    async def _connection(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        options = self.options
        record = GeminiConnectionRecord(key_ok=self._key_ok(ws.request),
                                        record_bytes=options.record_bytes)
        self.connections.append(record)
        # records of at most records_total_bytes // record_bytes connections, newest kept
        del self.connections[:-max(1, options.records_total_bytes // options.record_bytes)]
        try:
            if not record.key_ok:
                log.info("rejected a connection: bad API key")
                await ws.close(INVALID_CLOSE, BAD_KEY)
                return
            conversation = GeminiConversation(
                self.options, synthesize=self._synthesize, sessions=self.sessions,
                now=time.monotonic(), go_away_s=self.go_away_s, time_left_s=self.time_left_s)
            await _Link(ws, conversation, record).run()
        finally:
            record.close_code = ws.close_code
            record.closed.set()
            log.info("connection closed: code %s", ws.close_code)

    def _synthesize(self, text: str) -> bytes:
        return reply_audio(self.options.reply, text, self.options.reply_ms)


class _Link(ConnectionLoop[Out]):
    """One Gemini connection: client messages into the conversation, its messages out."""

    def __init__(self, ws: ServerConnection, conversation: GeminiConversation,
                 record: GeminiConnectionRecord) -> None:
        super().__init__(ws, conversation)
        self.conversation = conversation
        self.record = record

    def receive(self, frame: str | bytes, now: float) -> list[Out]:
        message, out = self.conversation.receive(frame, now)
        self.record.add(now, message, len(frame))
        if isinstance(message, Setup) and self.record.setup is None:
            self.record.setup = message
            self.record.resumed = self.conversation.resumed
        return out

    async def send(self, out: Out) -> None:
        if isinstance(out, Close):
            self.record.note_sent(f"close:{out.code}")
            await self.ws.close(out.code, out.reason)
            raise ConnectionOver
        await self.ws.send(orjson.dumps(out).decode())
        self.record.note_sent(_kind(out))


def _kind(message: Message) -> str:
    """`serverContent.turnComplete`-style name of a message, for records and logs."""
    kind = next(iter(message))
    body = message[kind]
    if kind == "serverContent" and isinstance(body, dict):
        return f"{kind}.{'+'.join(body)}"
    return kind

