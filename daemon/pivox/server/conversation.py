"""One connection of the local realtime server as a pure object: frames in, server events out.

`Conversation.receive(frame, now)` takes a client frame and returns the decoded client event
and the server events it causes; `tick(now)` streams the active response's audio, one delta
per call, at the pace `ServerOptions.speed` asks; `next_deadline()` says when `tick` has work.
Nothing here touches a socket or a clock.

Behaviour, after the Realtime API docs: `session.created` first; `session.update` merges the
fields it names and is answered by `session.updated` or an `error`; `input_audio_buffer.*`
buffer up to `MAX_INPUT_BYTES`; with `server_vad` (or `semantic_vad`, served by the same
energy detector with default settings) speech edges become `speech_started` /
`speech_stopped`, a commit, the user item and, if `create_response`, a response; speech that
starts while a response streams cancels it when `interrupt_response`. A response streams
`response.created`, `response.output_item.added`, `conversation.item.added`,
`response.content_part.added`, audio and transcript deltas, `response.output_audio.done`,
`response.output_audio_transcript.done`, `response.content_part.done`,
`response.output_item.done`, `conversation.item.done` (GA only), `response.done` with usage,
and `rate_limits.updated`. A function-call response sends the arguments as deltas at once.
Every bad client event gets an `error` naming the client `event_id`; none raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from pivox.errors import ProtocolError
from pivox.events import (
    AudioCleared,
    AudioCommitted,
    AudioDelta,
    AudioDone,
    CallId,
    ClientEvent,
    Dialect,
    Error,
    ErrorInfo,
    FunctionCallDelta,
    FunctionCallDone,
    FunctionCallOutput,
    InputAudioAppend,
    InputAudioClear,
    InputAudioCommit,
    InputTranscriptCompleted,
    ItemCreated,
    ItemId,
    ItemTruncate,
    OutputItemAdded,
    OutputItemDone,
    RateLimit,
    RateLimitsUpdated,
    ResponseCancel,
    ResponseCreate,
    ResponseCreated,
    ResponseDone,
    ResponseId,
    SemanticVad,
    ServerEvent,
    ServerVad,
    SessionConfig,
    SessionCreated,
    SessionUpdate,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TranscriptDelta,
    TranscriptDone,
    Unknown,
    UserText,
)
from pivox.protocol.openai import decode_client_event
from pivox.server.options import ServerOptions
from pivox.server.vad import BYTES_PER_SECOND, EnergyVad, SpeechStart, VadEdge

BYTES_PER_MS = BYTES_PER_SECOND // 1000
MAX_INPUT_BYTES = 10 * 60 * BYTES_PER_SECOND
MIN_COMMIT_MS = 100
MAX_ECHO_CHARS = 120

# The client event types of the cloud API; anything else is an `invalid_value` of `type`.
CLOUD_CLIENT_TYPES = (
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
    "input_audio_buffer.clear", "conversation.item.create", "conversation.item.retrieve",
    "conversation.item.truncate", "conversation.item.delete", "response.create",
    "response.cancel", "output_audio_buffer.clear",
)

Synthesize = Callable[[str], bytes]
_JSON = dict[str, Any]


@dataclass(slots=True, kw_only=True)
class _Stream:
    """The response whose audio is being streamed."""

    response_id: ResponseId
    item_id: ItemId
    audio: bytes
    words: list[str]
    started: float
    sent: int = 0
    chunks: int = 0
    words_sent: int = 0
    stale_left: int | None = None


@dataclass(slots=True, kw_only=True)
class _Item:
    """What the server remembers of a conversation item."""

    role: str
    audio_sent: int = 0
    name: str = ""


@dataclass(slots=True, kw_only=True)
class _Ids:
    """Per-connection id counters; `prefix` keeps ids unique across connections."""

    prefix: str
    counts: dict[str, int] = field(default_factory=dict)

    def new(self, kind: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return f"{kind}_{self.prefix}{self.counts[kind]:04d}"


class Conversation:
    """The server side of one Realtime session; see the module docstring."""

    def __init__(
        self,
        options: ServerOptions,
        *,
        dialect: Dialect,
        model: str,
        session_id: str,
        synthesize: Synthesize,
        stale_count: int = 0,
    ) -> None:
        """`synthesize(text)` returns the reply PCM; `stale_count` is the `stale` fault."""
        self.options = options
        self.dialect: Dialect = dialect
        self.model = model
        self.session_id = session_id
        self.config = SessionConfig()
        self._synthesize = synthesize
        self._stale_count = stale_count
        self._ids = _Ids(prefix=session_id.removeprefix("sess_")[:8])
        self._buffer = bytearray()
        self._buffer_start = 0  # session input byte offset of _buffer[0]
        self._vad: EnergyVad | None = None
        self._speech_item: ItemId | None = None
        self._items: dict[ItemId, _Item] = {}
        self._last_item: ItemId | None = None
        self._calls: dict[CallId, str] = {}
        self._tool_called = False
        self._reply_text = "I heard nothing yet"
        self._stream: _Stream | None = None
        self._restart_vad()

    # ------------------------------------------------------------------ input

    def start(self) -> list[ServerEvent]:
        """The events sent on connect: `session.created`."""
        return [SessionCreated(event_id=self._event_id(), session=self._session_json())]

    def receive(
        self, frame: str | bytes, now: float
    ) -> tuple[ClientEvent | ProtocolError, list[ServerEvent]]:
        """Handle one client frame: its decoded event and the server events it causes."""
        try:
            raw = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            error = ProtocolError(f"expected a JSON object: {exc}")
            return error, [self._error("invalid_json", f"Invalid JSON: {exc}")]
        if not isinstance(raw, dict):
            error = ProtocolError("expected a JSON object")
            return error, [self._error("invalid_json", "Invalid JSON: expected an object")]
        event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
        wire_type = raw.get("type")
        if wire_type not in CLOUD_CLIENT_TYPES:
            supported = ", ".join(f"'{name}'" for name in CLOUD_CLIENT_TYPES)
            message = f"Invalid value: {wire_type!r}. Supported values are: {supported}."
            return ProtocolError(message, event_type=None), [
                self._error("invalid_value", message, param="type", event_id=event_id)
            ]
        # session.update is checked here first: the cloud's error codes and `param`
        problem = _check_session(raw.get("session"), self.dialect) if (
            wire_type == "session.update") else None
        if problem is not None:
            code, message, param = problem
            return ProtocolError(message, event_type=wire_type), [
                self._error(code, message, param=param, event_id=event_id)
            ]
        event = decode_client_event(frame)
        if isinstance(event, ProtocolError):
            return event, [self._error("invalid_value", str(event), event_id=event_id)]
        if isinstance(event, SessionUpdate):
            return event, self._session_update(event, raw["session"])
        return event, self._HANDLERS[type(event)](self, event, now)

    def _session_update(
        self, event: SessionUpdate, session: Mapping[str, Any]
    ) -> list[ServerEvent]:
        paths = _GA_PATHS if self.dialect == "ga" else _BETA_PATHS
        named = {key: getattr(event.session, key) for key, path in paths.items()
                 if _lookup(session, path) is not _MISSING}
        previous = self.config.turn_detection
        self.config = replace(self.config, **named)
        if self.config.turn_detection != previous:
            self._restart_vad()
        return [SessionUpdated(event_id=self._event_id(), session=self._session_json())]

    def _append(self, event: InputAudioAppend, now: float) -> list[ServerEvent]:
        if len(self._buffer) + len(event.audio) > MAX_INPUT_BYTES:
            return [self._error(
                "input_audio_buffer_full",
                f"Input audio buffer is full: at most {MAX_INPUT_BYTES} bytes; commit or clear it.",
                event_id=event.event_id,
            )]
        self._buffer += event.audio
        if self._vad is None:
            return []
        out: list[ServerEvent] = []
        for edge in self._vad.feed(event.audio):
            out += self._vad_edge(edge, now)
        return out

    def _vad_edge(self, edge: VadEdge, now: float) -> list[ServerEvent]:
        td = self._server_vad()
        if isinstance(edge, SpeechStart):
            # audio before the padded start is silence the item leaves out
            self._drop_input(edge.audio_start_ms * BYTES_PER_MS - self._buffer_start)
            self._speech_item = ItemId(self._ids.new("item"))
            out: list[ServerEvent] = [SpeechStarted(
                event_id=self._event_id(),
                audio_start_ms=edge.audio_start_ms,
                item_id=self._speech_item,
            )]
            if self._stream is not None and td.interrupt_response:
                out += self._finish("cancelled", reason="turn_detected")
            return out
        item_id = self._speech_item or ItemId(self._ids.new("item"))
        self._speech_item = None
        out = [SpeechStopped(
            event_id=self._event_id(), audio_end_ms=edge.audio_end_ms, item_id=item_id
        )]
        end = max(0, edge.audio_end_ms * BYTES_PER_MS - self._buffer_start)
        out += self._commit_bytes(min(end, len(self._buffer)), item_id)
        if td.create_response and self._stream is None:
            out += self._start_response(now)
        return out

    def _commit(self, event: InputAudioCommit, now: float) -> list[ServerEvent]:
        ms = len(self._buffer) / BYTES_PER_MS
        if ms < MIN_COMMIT_MS:
            return [self._error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {ms:.2f}ms of audio.",
                event_id=event.event_id,
            )]
        item_id = self._speech_item or ItemId(self._ids.new("item"))
        self._speech_item = None
        out = self._commit_bytes(len(self._buffer), item_id)
        if self._vad is not None:
            self._vad.restart()
        return out

    def _commit_bytes(self, size: int, item_id: ItemId) -> list[ServerEvent]:
        """Turn the first `size` bytes of the buffer into a user audio item."""
        seconds = size / BYTES_PER_SECOND
        self._reply_text = f"I heard {seconds:.1f} seconds of audio"
        self._drop_input(size)
        item = {
            "id": item_id, "object": "realtime.item", "type": "message", "status": "completed",
            "role": "user", "content": [{"type": "input_audio", "transcript": None}],
        }
        previous = self._last_item
        out: list[ServerEvent] = [AudioCommitted(
            event_id=self._event_id(), item_id=item_id, previous_item_id=previous
        )]
        out += self._add_item(item_id, _Item(role="user"), item)
        if self.config.transcription_model is not None:
            out.append(InputTranscriptCompleted(
                event_id=self._event_id(), item_id=item_id, content_index=0,
                transcript=f"({seconds:.1f} seconds of audio)",
            ))
        return out

    def _drop_input(self, size: int) -> None:
        """Forget the first `size` bytes of the input buffer (session time still counts them)."""
        size = min(max(0, size), len(self._buffer))
        del self._buffer[:size]
        self._buffer_start += size

    def _clear(self, event: InputAudioClear, now: float) -> list[ServerEvent]:
        self._drop_input(len(self._buffer))
        self._speech_item = None
        if self._vad is not None:
            self._vad.restart()
        return [AudioCleared(event_id=self._event_id())]

    def _user_text(self, event: UserText, now: float) -> list[ServerEvent]:
        self._reply_text = f"You said: {event.text[:MAX_ECHO_CHARS]}"
        item_id = ItemId(self._ids.new("item"))
        item = {
            "id": item_id, "object": "realtime.item", "type": "message", "status": "completed",
            "role": "user", "content": [{"type": "input_text", "text": event.text}],
        }
        return self._add_item(item_id, _Item(role="user"), item)

    def _function_output(self, event: FunctionCallOutput, now: float) -> list[ServerEvent]:
        name = self._calls.get(event.call_id)
        if name is None:
            return [self._error(
                "invalid_value", f"Tool call ID '{event.call_id}' not found in conversation.",
                param="item.call_id", event_id=event.event_id,
            )]
        self._reply_text = f"The {name} tool said: {event.output[:MAX_ECHO_CHARS]}"
        item_id = ItemId(self._ids.new("item"))
        item = {
            "id": item_id, "object": "realtime.item", "type": "function_call_output",
            "call_id": event.call_id, "output": event.output,
        }
        return self._add_item(item_id, _Item(role="tool"), item)

    def _response_create(self, event: ResponseCreate, now: float) -> list[ServerEvent]:
        if self._stream is not None:
            return [self._error(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress: "
                f"{self._stream.response_id}. Wait until the response is finished before "
                "creating a new one.",
                event_id=event.event_id,
            )]
        return self._start_response(now)

    def _response_cancel(self, event: ResponseCancel, now: float) -> list[ServerEvent]:
        stream = self._stream
        if stream is None or event.response_id not in (None, stream.response_id):
            return [self._error(
                "response_cancel_not_active", "Cancellation failed: no active response found",
                event_id=event.event_id,
            )]
        if self._stale_count and stream.stale_left is None:
            stream.stale_left = self._stale_count  # tick() sends these, then finishes
            return []
        return self._finish("cancelled", reason="client_cancelled")

    def _truncate(self, event: ItemTruncate, now: float) -> list[ServerEvent]:
        item = self._items.get(event.item_id)
        problem: tuple[str, str] | None = None
        if item is None:
            problem = "item_id", f"Item with item_id '{event.item_id}' not found."
        elif item.role != "assistant":
            problem = "item_id", "Only model output audio messages can be truncated"
        elif event.content_index != 0:
            problem = "content_index", f"Content index {event.content_index} out of range."
        elif event.audio_end_ms < 0 or event.audio_end_ms * BYTES_PER_MS > item.audio_sent:
            sent_ms = item.audio_sent // BYTES_PER_MS
            problem = (
                "audio_end_ms",
                f"Audio content of {sent_ms}ms is already shorter than {event.audio_end_ms}ms",
            )
        if problem is not None:
            param, message = problem
            return [self._error("invalid_value", message, param=param, event_id=event.event_id)]
        return [Unknown(event_id=self._event_id(), type="conversation.item.truncated", payload={
            "type": "conversation.item.truncated", "item_id": event.item_id,
            "content_index": event.content_index, "audio_end_ms": event.audio_end_ms,
        })]

    _HANDLERS: Mapping[type, Callable[[Conversation, Any, float], list[ServerEvent]]] = {
        InputAudioAppend: _append,
        InputAudioCommit: _commit,
        InputAudioClear: _clear,
        UserText: _user_text,
        FunctionCallOutput: _function_output,
        ResponseCreate: _response_create,
        ResponseCancel: _response_cancel,
        ItemTruncate: _truncate,
    }

    # ------------------------------------------------------------------ output

    def next_deadline(self) -> float | None:
        """When `tick` has the next delta to send, or None while no response streams."""
        stream = self._stream
        if stream is None:
            return None
        if self.options.speed <= 0:
            return stream.started
        return stream.started + stream.chunks * self.options.chunk_ms / 1000 / self.options.speed

    def tick(self, now: float) -> list[ServerEvent]:
        """Send the next audio delta if it is due, and finish the response after the last."""
        stream = self._stream
        deadline = self.next_deadline()
        if stream is None or deadline is None or now < deadline:
            return []
        chunk = stream.audio[stream.sent : stream.sent + self.options.chunk_ms * BYTES_PER_MS]
        stream.chunks += 1
        out: list[ServerEvent] = []
        if chunk:
            out += self._words_due(stream, len(chunk))
            stream.sent += len(chunk)
            self._items[stream.item_id].audio_sent = stream.sent
            out.append(AudioDelta(event_id=self._event_id(), **self._part_ids(stream), audio=chunk))
        if stream.stale_left is not None:
            stream.stale_left -= 1
            if stream.stale_left <= 0 or stream.sent >= len(stream.audio):
                out += self._finish("cancelled", reason="client_cancelled")
        elif stream.sent >= len(stream.audio):
            out += self._finish("completed")
        return out

    def _words_due(self, stream: _Stream, size: int) -> list[ServerEvent]:
        due = math.ceil(len(stream.words) * (stream.sent + size) / len(stream.audio))
        out: list[ServerEvent] = [
            TranscriptDelta(event_id=self._event_id(), **self._part_ids(stream), delta=word)
            for word in stream.words[stream.words_sent : due]
        ]
        stream.words_sent = max(stream.words_sent, due)
        return out

    def _start_response(self, now: float) -> list[ServerEvent]:
        response_id = ResponseId(self._ids.new("resp"))
        item_id = ItemId(self._ids.new("item"))
        out: list[ServerEvent] = [ResponseCreated(
            event_id=self._event_id(), response_id=response_id,
            response=self._response_json(response_id, "in_progress", []),
        )]
        tool = self.options.tool_call
        if tool is not None and not self._tool_called and any(
            t.name == tool for t in self.config.tools
        ):
            self._tool_called = True
            return out + self._function_call(response_id, item_id, tool)
        text = self._reply_text
        audio = self._synthesize(text)
        item = self._audio_item(item_id, "in_progress", "")
        out.append(OutputItemAdded(
            event_id=self._event_id(), response_id=response_id, output_index=0, item=item
        ))
        out += self._add_item(item_id, _Item(role="assistant"), item, done=False)
        self._stream = _Stream(
            response_id=response_id, item_id=item_id, audio=audio,
            words=[word + " " for word in text.split()], started=now,
        )
        out.append(self._content_part("response.content_part.added", self._stream, ""))
        return out

    def _function_call(
        self, response_id: ResponseId, item_id: ItemId, name: str
    ) -> list[ServerEvent]:
        call_id = CallId(self._ids.new("call"))
        self._calls[call_id] = name
        arguments = self.options.tool_arguments
        ids = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        item: _JSON = {
            "id": item_id, "object": "realtime.item", "type": "function_call",
            "status": "in_progress", "name": name, "call_id": call_id, "arguments": "",
        }
        out: list[ServerEvent] = [OutputItemAdded(
            event_id=self._event_id(), response_id=response_id, output_index=0, item=item
        )]
        out += self._add_item(item_id, _Item(role="assistant", name=name), item, done=False)
        half = len(arguments) // 2
        out += [
            FunctionCallDelta(event_id=self._event_id(), **ids, call_id=call_id, delta=part)
            for part in (arguments[:half], arguments[half:]) if part
        ]
        out.append(FunctionCallDone(
            event_id=self._event_id(), **ids, call_id=call_id, name=name, arguments=arguments
        ))
        done_item = {**item, "status": "completed", "arguments": arguments}
        return out + self._close_response(
            response_id, "completed", None, done_item, arguments, 0
        )

    def _finish(self, status: str, *, reason: str | None = None) -> list[ServerEvent]:
        """End the streaming response: the done events, `response.done`, rate limits."""
        stream = self._stream
        assert stream is not None
        self._stream = None
        heard = "".join(stream.words[: stream.words_sent]).strip()
        ids = self._part_ids(stream)
        out: list[ServerEvent] = [
            AudioDone(event_id=self._event_id(), **ids),
            TranscriptDone(event_id=self._event_id(), **ids, transcript=heard),
            self._content_part("response.content_part.done", stream, heard),
        ]
        item_status = "completed" if status == "completed" else "incomplete"
        item = self._audio_item(stream.item_id, item_status, heard)
        return out + self._close_response(
            stream.response_id, status, reason, item, heard, stream.sent // BYTES_PER_MS
        )

    def _close_response(
        self, response_id: ResponseId, status: str, reason: str | None, item: _JSON,
        text: str, audio_ms: int,
    ) -> list[ServerEvent]:
        """`response.output_item.done` to `rate_limits.updated`; usage counts `text`, audio."""
        out: list[ServerEvent] = [OutputItemDone(
            event_id=self._event_id(), response_id=response_id, output_index=0, item=item
        )]
        if self.dialect == "ga":
            out.append(ItemCreated(event_id=self._event_id(), item=item, done=True))
        response = self._response_json(response_id, status, [item])
        if reason is not None:
            response["status_details"] = {"type": status, "reason": reason}
        text_tokens = len(text) // 4
        audio_tokens = audio_ms // 50
        response["usage"] = {
            "total_tokens": 20 + text_tokens + audio_tokens, "input_tokens": 20,
            "output_tokens": text_tokens + audio_tokens,
            "input_token_details": {"text_tokens": 20, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_tokens},
        }
        return [*out, ResponseDone(
            event_id=self._event_id(), response_id=response_id, status=status, response=response
        ), RateLimitsUpdated(event_id=self._event_id(), rate_limits=(
            RateLimit(name="requests", limit=5000, remaining=4999, reset_seconds=0.012),
            RateLimit(name="tokens", limit=400000, remaining=395000, reset_seconds=0.75),
        ))]

    # ------------------------------------------------------------------ helpers

    def _add_item(
        self, item_id: ItemId, record: _Item, item: _JSON, *, done: bool = True
    ) -> list[ServerEvent]:
        """Append an item to the conversation: `added` (+ GA `done` when it is complete)."""
        previous = self._last_item
        self._items[item_id] = record
        self._last_item = item_id
        out: list[ServerEvent] = [
            ItemCreated(event_id=self._event_id(), item=item, previous_item_id=previous)
        ]
        if done and self.dialect == "ga":
            out.append(ItemCreated(
                event_id=self._event_id(), item=item, previous_item_id=previous, done=True
            ))
        return out

    def _content_part(self, wire_type: str, stream: _Stream, transcript: str) -> Unknown:
        part = {"type": "audio", "transcript": transcript}
        return Unknown(event_id=self._event_id(), type=wire_type, payload={
            "type": wire_type, **self._part_ids(stream), "part": part,
        })

    @staticmethod
    def _part_ids(stream: _Stream) -> dict[str, Any]:
        return {
            "response_id": stream.response_id, "item_id": stream.item_id,
            "output_index": 0, "content_index": 0,
        }

    def _audio_item(self, item_id: ItemId, status: str, transcript: str) -> _JSON:
        kind = "output_audio" if self.dialect == "ga" else "audio"
        return {
            "id": item_id, "object": "realtime.item", "type": "message", "status": status,
            "role": "assistant", "content": [{"type": kind, "transcript": transcript}],
        }

    def _response_json(self, response_id: ResponseId, status: str, output: list[_JSON]) -> _JSON:
        modalities = "output_modalities" if self.dialect == "ga" else "modalities"
        return {
            "object": "realtime.response", "id": response_id, "status": status,
            "status_details": None, "output": output, "conversation_id": "conv_" + self._ids.prefix,
            modalities: ["audio"], "usage": None, "metadata": None,
        }

    def _error(
        self, code: str, message: str, *, param: str | None = None, event_id: str | None = None
    ) -> Error:
        return Error(event_id=self._event_id(), error=ErrorInfo(
            type="invalid_request_error", code=code, message=message, param=param,
            event_id=event_id,
        ))

    def _event_id(self) -> str:
        return self._ids.new("event")

    def _server_vad(self) -> ServerVad:
        td = self.config.turn_detection
        return td if isinstance(td, ServerVad) else ServerVad()

    def _restart_vad(self) -> None:
        """(Re)build the detector from the session's `turn_detection` at the current position."""
        self._speech_item = None
        if self.config.turn_detection is None:
            self._vad = None
            return
        td = self._server_vad()
        self._vad = EnergyVad(
            threshold=td.threshold, prefix_padding_ms=td.prefix_padding_ms,
            silence_duration_ms=td.silence_duration_ms,
            consumed=self._buffer_start + len(self._buffer),
        )

    def _session_json(self) -> _JSON:
        config = self.config
        td = config.turn_detection
        turn: _JSON | None
        if isinstance(td, ServerVad):
            turn = {"type": "server_vad", "threshold": td.threshold,
                    "prefix_padding_ms": td.prefix_padding_ms,
                    "silence_duration_ms": td.silence_duration_ms,
                    "create_response": td.create_response,
                    "interrupt_response": td.interrupt_response}
        elif isinstance(td, SemanticVad):
            turn = {"type": "semantic_vad", "eagerness": td.eagerness,
                    "create_response": True, "interrupt_response": True}
        else:
            turn = None
        tools = [{"type": "function", "name": t.name, "description": t.description,
                  "parameters": dict(t.parameters)} for t in config.tools]
        transcription = (
            None if config.transcription_model is None else {"model": config.transcription_model}
        )
        common = {"id": self.session_id, "object": "realtime.session", "model": self.model,
                  "instructions": config.instructions, "tools": tools,
                  "tool_choice": config.tool_choice}
        if self.dialect == "beta":
            return {**common, "modalities": ["audio", "text"], "voice": config.voice,
                    "input_audio_format": "pcm16", "output_audio_format": "pcm16",
                    "input_audio_transcription": transcription, "turn_detection": turn,
                    "temperature": 0.8, "max_response_output_tokens": "inf"}
        pcm = {"type": "audio/pcm", "rate": 24000}
        return {**common, "type": "realtime", "output_modalities": ["audio"],
                "max_output_tokens": "inf",
                "audio": {"input": {"format": pcm, "transcription": transcription,
                                    "noise_reduction": None, "turn_detection": turn},
                          "output": {"format": pcm, "voice": config.voice, "speed": 1.0}}}


# ---------------------------------------------------------------------- session.update checks

_MISSING = object()

# SessionConfig field -> where a session.update names it, per dialect
_GA_PATHS: dict[str, tuple[str, ...]] = {
    "instructions": ("instructions",), "voice": ("audio", "output", "voice"),
    "turn_detection": ("audio", "input", "turn_detection"),
    "transcription_model": ("audio", "input", "transcription"),
    "tools": ("tools",), "tool_choice": ("tool_choice",),
}
_BETA_PATHS: dict[str, tuple[str, ...]] = {
    **_GA_PATHS, "voice": ("voice",), "turn_detection": ("turn_detection",),
    "transcription_model": ("input_audio_transcription",),
}
# (path, allowed values, required) per dialect; a list value must hold only allowed values
_ENUMS: dict[str, tuple[tuple[tuple[str, ...], tuple[object, ...], bool], ...]] = {
    "ga": (
        (("type",), ("realtime",), True),
        (("output_modalities",), ("audio", "text"), False),
        (("audio", "input", "format", "type"), ("audio/pcm",), False),
        (("audio", "input", "format", "rate"), (24000,), False),
        (("audio", "output", "format", "type"), ("audio/pcm",), False),
        (("audio", "output", "format", "rate"), (24000,), False),
        (("audio", "input", "turn_detection", "type"), ("server_vad", "semantic_vad"), False),
    ),
    "beta": (
        (("modalities",), ("audio", "text"), False),
        (("input_audio_format",), ("pcm16",), False),
        (("output_audio_format",), ("pcm16",), False),
        (("turn_detection", "type"), ("server_vad", "semantic_vad"), False),
    ),
}
# (field under turn_detection, minimum, maximum, integer?)
_RANGES = (
    ("threshold", 0.0, 1.0, False),
    ("prefix_padding_ms", 0, None, True),
    ("silence_duration_ms", 0, None, True),
)


def _lookup(obj: object, path: tuple[str, ...]) -> object:
    for key in path:
        if not isinstance(obj, Mapping) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _check_session(session: object, dialect: Dialect) -> tuple[str, str, str] | None:
    """The first problem of a `session.update` payload as (code, message, param), or None."""
    if not isinstance(session, Mapping):
        return "invalid_type", "Invalid type for 'session': expected an object.", "session"
    if dialect == "beta" and "type" in session:
        return "unknown_parameter", "Unknown parameter: 'session.type'.", "session.type"
    for path, allowed, required in _ENUMS[dialect]:
        value = _lookup(session, path)
        param = ".".join(("session", *path))
        if value is _MISSING:
            if required:
                return ("missing_required_parameter",
                        f"Missing required parameter: '{param}'.", param)
            continue
        values = value if isinstance(value, list) else [value]
        for one in values:
            if one not in allowed:
                supported = ", ".join(repr(a) for a in allowed)
                return ("invalid_value",
                        f"Invalid value: {one!r}. Supported values are: {supported}.", param)
    turn_path = _GA_PATHS["turn_detection"] if dialect == "ga" else _BETA_PATHS["turn_detection"]
    for name, low, high, integer in _RANGES:
        value = _lookup(session, (*turn_path, name))
        param = ".".join(("session", *turn_path, name))
        kind = "integer" if integer else "decimal"
        if value is _MISSING:
            continue
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            return "invalid_type", f"Invalid type for '{param}': expected {kind}.", param
        if value < low:
            return (f"{kind}_below_min_value", f"Invalid '{param}': {kind} below minimum value. "
                    f"Expected a value >= {low}, but got {value} instead.", param)
        if high is not None and value > high:
            return (f"{kind}_above_max_value", f"Invalid '{param}': {kind} above maximum value. "
                    f"Expected a value <= {high}, but got {value} instead.", param)
    return None
