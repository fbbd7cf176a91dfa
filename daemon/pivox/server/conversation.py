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
With a transcription model, a committed user audio item gets
`conversation.item.input_audio_transcription.delta` events, then `.completed` with `usage`
(tokens, or duration for whisper models, as the cloud reports them).

The conversation keeps its items in order, as the server holds them: `conversation.item.create`
adds user, system and assistant messages and function call outputs; `.retrieve` answers
`conversation.item.retrieved`; `.delete` answers `conversation.item.deleted` and forgets the
item. `conversation.item.truncate` cuts an assistant audio item at `audio_end_ms` and, as the
docs say, deletes its server-side transcript, so every later view of it (`.done` events,
`response.done`, retrieve) shows it without one; truncating the item still streaming also
ends its response (status `cancelled`): no audio past the cut is sent.
An out-of-band `response.create` (`conversation: "none"`, `input` of one user text,
`metadata`) speaks its input's text (an announcement said verbatim), echoes `metadata`,
has no `conversation_id`, adds no item to the conversation (no `conversation.item.*`
events) and is not cancelled by server VAD, as the docs say; `response.cancel` ends it.
Every bad client event gets an `error` naming the client `event_id`; a cloud event the server
does not implement gets one that says "not implemented by pivox serve", with `param`; none
raises. Server events are shaped to validate strictly against the openai SDK's models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from pivox.core.errors import ProtocolError
from pivox.core.events import (
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
    InputTranscriptDelta,
    ItemCreated,
    ItemId,
    ItemTruncate,
    OutOfBandResponse,
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
from pivox.server.checks import (
    BETA_PATHS,
    GA_PATHS,
    MISSING,
    NOT_IMPLEMENTED,
    check_item,
    check_session,
    lookup,
)
from pivox.server.options import ServerOptions
from pivox.server.pacing import PacedReply
from pivox.server.vad import BYTES_PER_SECOND, EnergyVad, SpeechStart, VadEdge

BYTES_PER_MS = BYTES_PER_SECOND // 1000
MAX_INPUT_BYTES = 10 * 60 * BYTES_PER_SECOND
MAX_CONVERSATION_BYTES = 8 * 1024 * 1024
"""JSON bytes of items kept; past it the oldest are forgotten (the cloud truncates by tokens)."""
MIN_COMMIT_MS = 100
MAX_ECHO_CHARS = 120

# The client event types of the cloud API; anything else is an `invalid_value` of `type`.
CLOUD_CLIENT_TYPES = (
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
    "input_audio_buffer.clear", "conversation.item.create", "conversation.item.retrieve",
    "conversation.item.truncate", "conversation.item.delete", "response.create",
    "response.cancel", "output_audio_buffer.clear", "transcription_session.update",
)
# what `decode_client_event` models; other cloud types are handled here or not implemented
_CODEC_TYPES = frozenset({
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
    "input_audio_buffer.clear", "conversation.item.create", "conversation.item.truncate",
    "response.create", "response.cancel",
})

Synthesize = Callable[[str], bytes]
_JSON = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class RawClientEvent:
    """A client event the unified codec has no variant for (retrieve, delete, and items
    other than a one-part user text or a function call output): wire type and payload."""

    type: str
    event_id: str | None
    payload: Mapping[str, Any]


@dataclass(slots=True, kw_only=True)
class _Stream(PacedReply):
    """The response whose audio is being streamed."""

    response_id: ResponseId
    item_id: ItemId
    stale_left: int | None = None
    truncated: bool = False
    metadata: Mapping[str, str] | None = None
    """Set for an out-of-band response (`conversation: "none"`): its item is in no
    conversation, and server VAD does not cancel it."""


@dataclass(slots=True, kw_only=True)
class _Item:
    """A conversation item as the server holds it: its wire JSON, the JSON's size when
    stored, and the audio sent of it."""

    item: _JSON
    size: int
    audio_sent: int = 0


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
        self._items: dict[ItemId, _Item] = {}  # in conversation order
        self._item_bytes = 0
        self._calls: dict[CallId, str] = {}
        self._tool_called = False
        self._reply_text = "I heard nothing yet"
        self._stream: _Stream | None = None
        self._restart_vad()

    # ------------------------------------------------------------------ input

    def start(self) -> list[ServerEvent]:
        """The events sent on connect: `session.created`."""
        return [SessionCreated(event_id=self.event_id(), session=self._session_json())]

    def receive(
        self, frame: str | bytes, now: float
    ) -> tuple[ClientEvent | RawClientEvent | ProtocolError, list[ServerEvent]]:
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
        problem = check_session(raw.get("session"), self.dialect) if (
            wire_type == "session.update") else None
        if problem is not None:
            code, message, param = problem
            reply = (self._not_implemented(message, param, event_id) if code == NOT_IMPLEMENTED
                     else self._error(code, message, param=param, event_id=event_id))
            return ProtocolError(message, event_type=wire_type), [reply]
        raw_handler = self._RAW_HANDLERS.get(wire_type)
        if raw_handler is not None:
            raw_event = RawClientEvent(type=wire_type, event_id=event_id, payload=raw)
            return raw_event, raw_handler(self, raw_event)
        if wire_type not in _CODEC_TYPES:
            return RawClientEvent(type=wire_type, event_id=event_id, payload=raw), [
                self._not_implemented(f"'{wire_type}'", "type", event_id)
            ]
        event = decode_client_event(frame)
        if isinstance(event, ProtocolError) and wire_type == "conversation.item.create":
            item = raw.get("item")
            if isinstance(item, dict) and item.get("type") != "function_call_output":
                raw_event = RawClientEvent(type=wire_type, event_id=event_id, payload=raw)
                return raw_event, self._create_item(raw_event)
        if isinstance(event, ProtocolError):
            return event, [self._error("invalid_value", str(event), event_id=event_id)]
        if isinstance(event, SessionUpdate):
            return event, self._session_update(event, raw["session"])
        return event, self._HANDLERS[type(event)](self, event, now)

    def _session_update(
        self, event: SessionUpdate, session: Mapping[str, Any]
    ) -> list[ServerEvent]:
        paths = GA_PATHS if self.dialect == "ga" else BETA_PATHS
        named = {key: getattr(event.session, key) for key, path in paths.items()
                 if lookup(session, path) is not MISSING}
        previous = self.config.turn_detection
        self.config = replace(self.config, **named)
        if self.config.turn_detection != previous:
            self._restart_vad()
        return [SessionUpdated(event_id=self.event_id(), session=self._session_json())]

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
                event_id=self.event_id(),
                audio_start_ms=edge.audio_start_ms,
                item_id=self._speech_item,
            )]
            if self._stream is not None and td.interrupt_response and (
                    self._stream.metadata is None):
                out += self._finish("cancelled", reason="turn_detected")
            return out
        item_id = self._speech_item or ItemId(self._ids.new("item"))
        self._speech_item = None
        out = [SpeechStopped(
            event_id=self.event_id(), audio_end_ms=edge.audio_end_ms, item_id=item_id
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
        out: list[ServerEvent] = [AudioCommitted(
            event_id=self.event_id(), item_id=item_id, previous_item_id=self._last_item
        )]
        out += self._add_item(item_id, item)
        model = self.config.transcription_model
        if model is None:
            return out
        transcript = f"({seconds:.1f} seconds of audio)"
        self._items[item_id].item["content"][0]["transcript"] = transcript
        out += [
            InputTranscriptDelta(event_id=self.event_id(), item_id=item_id, content_index=0,
                                 delta=word)
            for word in _words(transcript)
        ]
        completed = {
            "type": _TRANSCRIPTION_COMPLETED, "item_id": item_id, "content_index": 0,
            "transcript": transcript, "usage": _transcription_usage(model, seconds, transcript),
        }
        return [*out, Unknown(event_id=self.event_id(), type=_TRANSCRIPTION_COMPLETED,
                              payload=completed)]

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
        return [AudioCleared(event_id=self.event_id())]

    def _user_text(self, event: UserText, now: float) -> list[ServerEvent]:
        self._reply_text = f"You said: {event.text[:MAX_ECHO_CHARS]}"
        item_id = ItemId(self._ids.new("item"))
        item = {
            "id": item_id, "object": "realtime.item", "type": "message", "status": "completed",
            "role": "user", "content": [{"type": "input_text", "text": event.text}],
        }
        return self._add_item(item_id, item)

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
        return self._add_item(item_id, item)

    def _response_create(self, event: ResponseCreate, now: float) -> list[ServerEvent]:
        if self._stream is not None:
            return [self._error(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress: "
                f"{self._stream.response_id}. Wait until the response is finished before "
                "creating a new one.",
                event_id=event.event_id,
            )]
        lacking = _unserved_override(event.response or {}, self.dialect)
        if lacking is not None:
            return [self._not_implemented(*lacking, event.event_id)]
        return self._start_response(now)

    def _out_of_band(self, event: OutOfBandResponse, now: float) -> list[ServerEvent]:
        """A response outside the conversation: it speaks its input's text, as an
        announcement's instructions ask, and adds no item to the conversation."""
        if self._stream is not None:
            return self._response_create(ResponseCreate(event_id=event.event_id), now)
        return self._start_response(now, text=event.text, metadata=event.metadata)

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
        elif event.content_index >= len(item.item.get("content", [])):
            problem = "content_index", f"Content index {event.content_index} out of range."
        elif item.item.get("role") != "assistant" or item.item["content"][
            event.content_index
        ]["type"] not in ("output_audio", "audio"):
            problem = "item_id", "Only model output audio messages can be truncated"
        elif event.audio_end_ms < 0 or event.audio_end_ms * BYTES_PER_MS > item.audio_sent:
            sent_ms = item.audio_sent // BYTES_PER_MS
            problem = (
                "audio_end_ms",
                f"Audio content of {sent_ms}ms is already shorter than {event.audio_end_ms}ms",
            )
        if problem is not None or item is None:
            param, message = problem or ("item_id", "")
            return [self._error("invalid_value", message, param=param, event_id=event.event_id)]
        # "Truncating audio will delete the server-side text transcript" (API reference)
        item.audio_sent = event.audio_end_ms * BYTES_PER_MS
        for part in item.item["content"]:
            if "transcript" in part:
                part["transcript"] = ""
        out: list[ServerEvent] = [Unknown(
            event_id=self.event_id(), type="conversation.item.truncated", payload={
                "type": "conversation.item.truncated", "item_id": event.item_id,
                "content_index": event.content_index, "audio_end_ms": event.audio_end_ms,
            })]
        stream = self._stream
        if stream is not None and stream.item_id == event.item_id:
            stream.truncated = True
            if stream.stale_left is None:  # else cancelled already, stale deltas in flight
                out += self._finish("cancelled", reason="client_cancelled")
        return out

    def _retrieve(self, event: RawClientEvent) -> list[ServerEvent]:
        held = self._held_item(event)
        if isinstance(held, Error):
            return [held]
        return [Unknown(event_id=self.event_id(), type="conversation.item.retrieved", payload={
            "type": "conversation.item.retrieved", "item": _copy(held.item)[0],
        })]

    def _delete(self, event: RawClientEvent) -> list[ServerEvent]:
        held = self._held_item(event)
        if isinstance(held, Error):
            return [held]
        item_id = ItemId(held.item["id"])
        if self._stream is not None and self._stream.item_id == item_id:
            return [self._error(
                "invalid_value", f"Item '{item_id}' belongs to the active response; cancel it "
                "first.", param="item_id", event_id=event.event_id,
            )]
        self._item_bytes -= self._items.pop(item_id).size
        return [Unknown(event_id=self.event_id(), type="conversation.item.deleted", payload={
            "type": "conversation.item.deleted", "item_id": item_id,
        })]

    def _held_item(self, event: RawClientEvent) -> _Item | Error:
        """The item `event.payload["item_id"]` names, or the error to send."""
        item_id = event.payload.get("item_id")
        if not isinstance(item_id, str):
            return self._error("invalid_type", "Invalid type for 'item_id': expected a string.",
                               param="item_id", event_id=event.event_id)
        held = self._items.get(ItemId(item_id))
        if held is None:
            return self._error("invalid_value", f"Item with item_id '{item_id}' not found.",
                               param="item_id", event_id=event.event_id)
        return held

    def _create_item(self, event: RawClientEvent) -> list[ServerEvent]:
        """`conversation.item.create` of an item the codec does not model (see `check_item`)."""
        checked = check_item(event.payload["item"], self.dialect)
        if isinstance(checked, tuple):
            code, message, param = checked
            if code == NOT_IMPLEMENTED:
                return [self._not_implemented(message, param, event.event_id)]
            return [self._error(code, message, param=param, event_id=event.event_id)]
        given = checked.pop("id", None)
        if given in self._items:
            return [self._error(
                "invalid_value", f"Item with id '{given}' already exists.", param="item.id",
                event_id=event.event_id,
            )]
        item_id = ItemId(given or self._ids.new("item"))
        item = {"id": item_id, "object": "realtime.item", **checked}
        if item["type"] == "function_call":
            self._calls[CallId(item["call_id"])] = item["name"]
        elif item["role"] == "user":
            said = " ".join(p.get("text") or p.get("transcript") or "" for p in item["content"])
            self._reply_text = f"You said: {said[:MAX_ECHO_CHARS]}"
        return self._add_item(item_id, item)

    def _not_implemented(self, what: str, param: str, event_id: str | None) -> Error:
        return self._error(NOT_IMPLEMENTED, f"{what} is not implemented by pivox serve.",
                           param=param, event_id=event_id)

    _RAW_HANDLERS: Mapping[str, Callable[[Conversation, RawClientEvent], list[ServerEvent]]] = {
        "conversation.item.retrieve": _retrieve,
        "conversation.item.delete": _delete,
    }

    _HANDLERS: Mapping[type, Callable[[Conversation, Any, float], list[ServerEvent]]] = {
        InputAudioAppend: _append,
        InputAudioCommit: _commit,
        InputAudioClear: _clear,
        UserText: _user_text,
        FunctionCallOutput: _function_output,
        ResponseCreate: _response_create,
        OutOfBandResponse: _out_of_band,
        ResponseCancel: _response_cancel,
        ItemTruncate: _truncate,
    }

    # ------------------------------------------------------------------ output

    def next_deadline(self) -> float | None:
        """When `tick` has the next delta to send, or None while no response streams."""
        return None if self._stream is None else self._stream.due()

    def tick(self, now: float) -> list[ServerEvent]:
        """Send the next audio delta if it is due, and finish the response after the last."""
        stream = self._stream
        deadline = self.next_deadline()
        if stream is None or deadline is None or now < deadline:
            return []
        chunk = stream.take()
        out: list[ServerEvent] = []
        if chunk:
            out += self._words_due(stream)
            if not stream.truncated and stream.metadata is None:
                self._items[stream.item_id].audio_sent = stream.sent
            out.append(AudioDelta(event_id=self.event_id(), **self._part_ids(stream), audio=chunk))
        if stream.stale_left is not None:
            stream.stale_left -= 1
            if stream.stale_left <= 0 or stream.finished:
                out += self._finish("cancelled", reason="client_cancelled")
        elif stream.finished:
            out += self._finish("completed")
        return out

    def _words_due(self, stream: _Stream) -> list[ServerEvent]:
        due = math.ceil(len(stream.words) * stream.sent / len(stream.audio))
        out: list[ServerEvent] = [
            TranscriptDelta(event_id=self.event_id(), **self._part_ids(stream), delta=word)
            for word in stream.words[stream.words_sent : due]
        ]
        stream.words_sent = max(stream.words_sent, due)
        return out

    def _start_response(self, now: float, *, text: str | None = None,
                        metadata: Mapping[str, str] | None = None) -> list[ServerEvent]:
        """A response speaking `text` (default: the reply so far); `metadata` makes it
        out-of-band."""
        response_id = ResponseId(self._ids.new("resp"))
        item_id = ItemId(self._ids.new("item"))
        out: list[ServerEvent] = [ResponseCreated(
            event_id=self.event_id(), response_id=response_id,
            response=self._response_json(response_id, "in_progress", [], metadata),
        )]
        tool = self.options.tool_call
        if metadata is None and tool is not None and not self._tool_called and any(
            t.name == tool for t in self.config.tools
        ):
            self._tool_called = True
            return out + self._function_call(response_id, item_id, tool)
        text = self._reply_text if text is None else text
        audio = self._synthesize(text)
        item = self._audio_item(item_id, "in_progress", "")
        out.append(OutputItemAdded(
            event_id=self.event_id(), response_id=response_id, output_index=0, item=item
        ))
        if metadata is None:
            out += self._add_item(item_id, item, done=False)
        self._stream = _Stream(
            response_id=response_id, item_id=item_id, audio=audio,
            words=[word + " " for word in text.split()], started=now,
            chunk_ms=self.options.chunk_ms, speed=self.options.speed, metadata=metadata,
        )
        out.append(self._content_part("response.content_part.added", self._stream, ""))
        return out

    def _function_call(
        self, response_id: ResponseId, item_id: ItemId, name: str
    ) -> list[ServerEvent]:
        call_id = CallId(self._ids.new("call"))
        self._calls[call_id] = name
        arguments = self.options.tool_arguments
        ids: dict[str, Any] = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        item: _JSON = {
            "id": item_id, "object": "realtime.item", "type": "function_call",
            "status": "in_progress", "name": name, "call_id": call_id, "arguments": "",
        }
        out: list[ServerEvent] = [OutputItemAdded(
            event_id=self.event_id(), response_id=response_id, output_index=0, item=item
        )]
        out += self._add_item(item_id, item, done=False)
        half = len(arguments) // 2
        out += [
            FunctionCallDelta(event_id=self.event_id(), **ids, call_id=call_id, delta=part)
            for part in (arguments[:half], arguments[half:]) if part
        ]
        out.append(FunctionCallDone(
            event_id=self.event_id(), **ids, call_id=call_id, name=name, arguments=arguments
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
        heard = "" if stream.truncated else "".join(stream.words[: stream.words_sent]).strip()
        ids = self._part_ids(stream)
        out: list[ServerEvent] = [
            AudioDone(event_id=self.event_id(), **ids),
            TranscriptDone(event_id=self.event_id(), **ids, transcript=heard),
            self._content_part("response.content_part.done", stream, heard),
        ]
        item_status = "completed" if status == "completed" else "incomplete"
        item = self._audio_item(stream.item_id, item_status, heard)
        return out + self._close_response(
            stream.response_id, status, reason, item, heard, stream.sent // BYTES_PER_MS,
            stream.metadata,
        )

    def _close_response(
        self, response_id: ResponseId, status: str, reason: str | None, item: _JSON,
        text: str, audio_ms: int, metadata: Mapping[str, str] | None = None,
    ) -> list[ServerEvent]:
        """`response.output_item.done` to `rate_limits.updated`; usage counts `text`, audio."""
        held = self._items.get(ItemId(item["id"]))
        if held is not None:
            copy, size = _copy(item)
            self._item_bytes += size - held.size
            held.item, held.size = copy, size
        out: list[ServerEvent] = [OutputItemDone(
            event_id=self.event_id(), response_id=response_id, output_index=0, item=item
        )]
        if self.dialect == "ga" and metadata is None:
            out.append(ItemCreated(event_id=self.event_id(), item=item, done=True))
        response = self._response_json(response_id, status, [item], metadata)
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
            event_id=self.event_id(), response_id=response_id, status=status, response=response
        ), RateLimitsUpdated(event_id=self.event_id(), rate_limits=(
            RateLimit(name="requests", limit=5000, remaining=4999, reset_seconds=0.012),
            RateLimit(name="tokens", limit=400000, remaining=395000, reset_seconds=0.75),
        ))]

    # ------------------------------------------------------------------ helpers

    @property
    def _last_item(self) -> ItemId | None:
        return next(reversed(self._items), None)

    def _add_item(self, item_id: ItemId, item: _JSON, *, done: bool = True) -> list[ServerEvent]:
        """Append an item to the conversation: `added` (+ GA `done` when it is complete)."""
        previous = self._last_item
        copy, size = _copy(item)
        self._items[item_id] = _Item(item=copy, size=size)
        self._item_bytes += size
        streaming = self._stream.item_id if self._stream is not None else None
        while self._item_bytes > MAX_CONVERSATION_BYTES and len(self._items) > 1:
            oldest = next(iter(self._items))
            if oldest == streaming:
                break
            self._item_bytes -= self._items.pop(oldest).size
        out: list[ServerEvent] = [
            ItemCreated(event_id=self.event_id(), item=item, previous_item_id=previous)
        ]
        if done and self.dialect == "ga":
            out.append(ItemCreated(
                event_id=self.event_id(), item=item, previous_item_id=previous, done=True
            ))
        return out

    def _content_part(self, wire_type: str, stream: _Stream, transcript: str) -> Unknown:
        part = {"type": "audio", "transcript": transcript}
        return Unknown(event_id=self.event_id(), type=wire_type, payload={
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

    def _response_json(self, response_id: ResponseId, status: str, output: list[_JSON],
                       metadata: Mapping[str, str] | None = None) -> _JSON:
        """A response object; one with `metadata` is out-of-band (in no conversation)."""
        modalities = "output_modalities" if self.dialect == "ga" else "modalities"
        conversation = None if metadata is not None else "conv_" + self._ids.prefix
        return {
            "object": "realtime.response", "id": response_id, "status": status,
            "status_details": None, "output": output, "conversation_id": conversation,
            modalities: ["audio"], "usage": None,
            "metadata": None if metadata is None else dict(metadata),
        }

    def _error(
        self, code: str, message: str, *, param: str | None = None, event_id: str | None = None
    ) -> Error:
        return Error(event_id=self.event_id(), error=ErrorInfo(
            type="invalid_request_error", code=code, message=message, param=param,
            event_id=event_id,
        ))

    def event_id(self) -> str:
        """A fresh server `event_id`; the websockets layer takes one for what it sends."""
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


# ---------------------------------------------------------------------- items

_TRANSCRIPTION_COMPLETED = "conversation.item.input_audio_transcription.completed"


def _unserved_override(response: Mapping[str, Any], dialect: Dialect) -> tuple[str, str] | None:
    """A `response.create` override the server cannot honour, as (what, param), or None.

    Text-only replies and a `conversation` other than "auto" are refused (an out-of-band
    one, "none", arrives as an OutOfBandResponse); other overrides (instructions, voice,
    tools, metadata, ...) are ignored: replies are fixed.
    """
    key = "output_modalities" if dialect == "ga" else "modalities"
    modalities = response.get(key)
    if isinstance(modalities, list) and "audio" not in modalities:
        return f"A response without audio ({key} {modalities!r})", f"response.{key}"
    if response.get("conversation", "auto") != "auto":
        return "An out-of-band response (conversation other than 'auto')", "response.conversation"
    return None


def _copy(item: _JSON) -> tuple[_JSON, int]:
    """A deep copy of an item to hold (events in the outbox keep theirs) and its JSON size."""
    data = orjson.dumps(item)
    return orjson.loads(data), len(data)


def _words(text: str) -> list[str]:
    """`text` cut into deltas that join back into it: each word with its leading space."""
    words = text.split(" ")
    return [words[0], *(" " + word for word in words[1:])]


def _transcription_usage(model: str, seconds: float, transcript: str) -> _JSON:
    """Usage as the cloud reports it: duration for whisper models, tokens for the others."""
    if model.startswith("whisper"):
        return {"type": "duration", "seconds": round(seconds, 3)}
    audio_tokens = max(1, round(seconds * 10))
    text_tokens = max(1, len(transcript) // 4)
    return {"type": "tokens", "input_tokens": audio_tokens, "output_tokens": text_tokens,
            "total_tokens": audio_tokens + text_tokens,
            "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens}}
