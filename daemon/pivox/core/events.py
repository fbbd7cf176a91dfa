"""The unified event model: what any realtime server says, and what pivox says back.

Server events are decoded from the wire by `pivox.protocol.openai` (GA and beta names
map to the same variant) or `pivox.protocol.gemini`; client events are encoded by them.
Every class here is a frozen, slotted, keyword-only dataclass and does no I/O. `event_id`
is the wire `event_id` when the frame carried one, else None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NewType

ItemId = NewType("ItemId", str)
ResponseId = NewType("ResponseId", str)
CallId = NewType("CallId", str)

JsonObject = Mapping[str, Any]

Dialect = Literal["ga", "beta"]
"""Which names the OpenAI Realtime API uses: the GA API or the older beta (`realtime=v1`)."""


# --------------------------------------------------------------------------- server events


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorInfo:
    """The `error` object of an `error` event; `event_id` echoes the client event at fault."""

    type: str
    code: str | None = None
    message: str = ""
    param: str | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """One entry of `rate_limits.updated`."""

    name: str
    limit: int
    remaining: int
    reset_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCreated:
    """`session.created`: the server opened a session with this configuration."""

    event_id: str | None = None
    session: JsonObject


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionUpdated:
    """`session.updated`: the server applied a `session.update`."""

    event_id: str | None = None
    session: JsonObject


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    """`error`: the server reports a problem; most are not fatal."""

    event_id: str | None = None
    error: ErrorInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStarted:
    """`input_audio_buffer.speech_started`: server VAD heard the user start speaking."""

    event_id: str | None = None
    audio_start_ms: int
    item_id: ItemId


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStopped:
    """`input_audio_buffer.speech_stopped`: server VAD heard the user stop speaking."""

    event_id: str | None = None
    audio_end_ms: int
    item_id: ItemId


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioCommitted:
    """`input_audio_buffer.committed`: the input buffer became a user item."""

    event_id: str | None = None
    item_id: ItemId
    previous_item_id: ItemId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioCleared:
    """`input_audio_buffer.cleared`."""

    event_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemCreated:
    """`conversation.item.added` (GA) / `conversation.item.created` (beta).

    GA also sends `conversation.item.done` once the item is complete: `done` is True then.
    """

    event_id: str | None = None
    item: JsonObject
    previous_item_id: ItemId | None = None
    done: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseCreated:
    """`response.created`."""

    event_id: str | None = None
    response_id: ResponseId
    response: JsonObject


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseDone:
    """`response.done`; `status` is completed, cancelled, failed or incomplete."""

    event_id: str | None = None
    response_id: ResponseId
    status: str
    response: JsonObject


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputItemAdded:
    """`response.output_item.added`."""

    event_id: str | None = None
    response_id: ResponseId
    output_index: int
    item: JsonObject


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputItemDone:
    """`response.output_item.done`."""

    event_id: str | None = None
    response_id: ResponseId
    output_index: int
    item: JsonObject


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioDelta:
    """`response.output_audio.delta` (GA) / `response.audio.delta` (beta).

    `audio` is the decoded PCM16 (the wire carries it as base64 in `delta`).
    """

    event_id: str | None = None
    response_id: ResponseId
    item_id: ItemId
    output_index: int
    content_index: int
    audio: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioDone:
    """`response.output_audio.done` (GA) / `response.audio.done` (beta)."""

    event_id: str | None = None
    response_id: ResponseId
    item_id: ItemId
    output_index: int
    content_index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta:
    """`response.output_text.delta` (GA) / `response.text.delta` (beta)."""

    event_id: str | None = None
    response_id: ResponseId
    item_id: ItemId
    output_index: int
    content_index: int
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDone:
    """`response.output_text.done` (GA) / `response.text.done` (beta)."""

    event_id: str | None = None
    response_id: ResponseId
    item_id: ItemId
    output_index: int
    content_index: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptDelta:
    """`response.output_audio_transcript.delta` (GA) / `response.audio_transcript.delta`."""

    event_id: str | None = None
    response_id: ResponseId
    item_id: ItemId
    output_index: int
    content_index: int
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptDone:
    """`response.output_audio_transcript.done` (GA) / `response.audio_transcript.done`."""

    event_id: str | None = None
    response_id: ResponseId
    item_id: ItemId
    output_index: int
    content_index: int
    transcript: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallDelta:
    """`response.function_call_arguments.delta`."""

    event_id: str | None = None
    response_id: ResponseId
    item_id: ItemId
    output_index: int
    call_id: CallId
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallDone:
    """`response.function_call_arguments.done`; `arguments` is a JSON string."""

    event_id: str | None = None
    response_id: ResponseId
    item_id: ItemId
    output_index: int
    call_id: CallId
    name: str
    arguments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitsUpdated:
    """`rate_limits.updated`."""

    event_id: str | None = None
    rate_limits: tuple[RateLimit, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTranscriptDelta:
    """`conversation.item.input_audio_transcription.delta`."""

    event_id: str | None = None
    item_id: ItemId
    content_index: int
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTranscriptCompleted:
    """`conversation.item.input_audio_transcription.completed`."""

    event_id: str | None = None
    item_id: ItemId
    content_index: int
    transcript: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAway:
    """The server will close this connection soon (Gemini `goAway`): reconnect ahead of it.

    `time_left_ms` is how long the connection has left, None when the server did not say.
    """

    event_id: str | None = None
    time_left_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unknown:
    """Any other server event: its wire `type` and the whole decoded payload, nothing lost."""

    event_id: str | None = None
    type: str
    payload: JsonObject


ServerEvent = (
    SessionCreated
    | SessionUpdated
    | Error
    | SpeechStarted
    | SpeechStopped
    | AudioCommitted
    | AudioCleared
    | ItemCreated
    | ResponseCreated
    | ResponseDone
    | OutputItemAdded
    | OutputItemDone
    | AudioDelta
    | AudioDone
    | TextDelta
    | TextDone
    | TranscriptDelta
    | TranscriptDone
    | FunctionCallDelta
    | FunctionCallDone
    | RateLimitsUpdated
    | InputTranscriptDelta
    | InputTranscriptCompleted
    | GoAway
    | Unknown
)

# --------------------------------------------------------------------------- session config


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerVad:
    """`turn_detection: {type: server_vad, ...}`: the server decides when a turn ends."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SemanticVad:
    """`turn_detection: {type: semantic_vad, eagerness}`."""

    eagerness: str = "auto"


TurnDetection = ServerVad | SemanticVad


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    """A function the model may call; `parameters` is a JSON Schema object."""

    name: str
    description: str = ""
    parameters: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """What pivox asks of a session; encoded in GA or beta shape by the codec.

    `turn_detection` None turns server VAD off (push-to-talk: the client commits).
    """

    instructions: str = ""
    voice: str = "alloy"
    turn_detection: TurnDetection | None = field(default_factory=ServerVad)
    transcription_model: str | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"


# --------------------------------------------------------------------------- client events


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionUpdate:
    """`session.update`."""

    event_id: str | None = None
    session: SessionConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioAppend:
    """`input_audio_buffer.append`; `audio` is raw PCM16 (base64 on the wire)."""

    event_id: str | None = None
    audio: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioCommit:
    """`input_audio_buffer.commit`."""

    event_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioClear:
    """`input_audio_buffer.clear`."""

    event_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserText:
    """`conversation.item.create` with a user message of one `input_text` part."""

    event_id: str | None = None
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallOutput:
    """`conversation.item.create` with a `function_call_output` item."""

    event_id: str | None = None
    call_id: CallId
    output: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseCreate:
    """`response.create`, optionally with `response` overrides."""

    event_id: str | None = None
    response: JsonObject | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutOfBandResponse:
    """`response.create` outside the conversation (`conversation: "none"`): a response to
    `input` holding only `text`, made per `instructions`, tagged with `metadata` (an
    announcement: the conversation never sees it)."""

    event_id: str | None = None
    instructions: str
    text: str
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseCancel:
    """`response.cancel`, of one response or of the active one."""

    event_id: str | None = None
    response_id: ResponseId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemTruncate:
    """`conversation.item.truncate`: the user heard only `audio_end_ms` of this item."""

    event_id: str | None = None
    item_id: ItemId
    content_index: int = 0
    audio_end_ms: int


ClientEvent = (
    SessionUpdate
    | InputAudioAppend
    | InputAudioCommit
    | InputAudioClear
    | UserText
    | FunctionCallOutput
    | ResponseCreate
    | OutOfBandResponse
    | ResponseCancel
    | ItemTruncate
)
