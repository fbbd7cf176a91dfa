"""OpenAI Realtime wire format ⇄ the unified events of `pivox.core.events` (sans-I/O).

Every event is described once, as a table row of wire keys and value kinds; that one row
decodes and encodes it. Dispatch is by dict on the wire `type`, GA and beta names both.

Server events (GA name / beta name where it differs → variant):
    session.created                                  → SessionCreated
    session.updated                                  → SessionUpdated
    error                                            → Error
    input_audio_buffer.speech_started                → SpeechStarted
    input_audio_buffer.speech_stopped                → SpeechStopped
    input_audio_buffer.committed                     → AudioCommitted
    input_audio_buffer.cleared                       → AudioCleared
    conversation.item.added / conversation.item.created → ItemCreated
    conversation.item.done (GA only)                 → ItemCreated(done=True)
    response.created                                 → ResponseCreated
    response.done                                    → ResponseDone
    response.output_item.added                       → OutputItemAdded
    response.output_item.done                        → OutputItemDone
    response.output_audio.delta / response.audio.delta → AudioDelta
    response.output_audio.done / response.audio.done → AudioDone
    response.output_text.delta / response.text.delta → TextDelta
    response.output_text.done / response.text.done   → TextDone
    response.output_audio_transcript.delta / response.audio_transcript.delta → TranscriptDelta
    response.output_audio_transcript.done / response.audio_transcript.done → TranscriptDone
    response.function_call_arguments.delta           → FunctionCallDelta
    response.function_call_arguments.done            → FunctionCallDone
    rate_limits.updated                              → RateLimitsUpdated
    conversation.item.input_audio_transcription.delta     → InputTranscriptDelta
    conversation.item.input_audio_transcription.completed → InputTranscriptCompleted
    anything else                                    → Unknown(type, payload=the whole frame)
Both names of a pair decode in either dialect (GA servers also still send
`conversation.item.created`). Encoding picks the dialect's name; beta has no
`conversation.item.done`, so `ItemCreated(done=True)` encodes as `conversation.item.created`
in beta and `done` does not survive that round trip.

Client events (same names in both dialects):
    session.update               ← SessionUpdate (GA or beta `session` shape, by dialect)
    input_audio_buffer.append    ← InputAudioAppend
    input_audio_buffer.commit    ← InputAudioCommit
    input_audio_buffer.clear     ← InputAudioClear
    conversation.item.create     ← UserText (a user message of one input_text part)
                                 ← FunctionCallOutput (a function_call_output item)
    response.create              ← ResponseCreate
                                 ← OutOfBandResponse (`response.conversation: "none"`,
                                   `input`: one user message of one input_text part,
                                   `instructions`, `metadata`; decoded so when `conversation`
                                   is "none" and `input` is there)
    response.cancel              ← ResponseCancel
    conversation.item.truncate   ← ItemTruncate
`decode_client_event` accepts either `session` shape (GA has `session.type: "realtime"`).

Decoders never raise on bad input: they return a `ProtocolError` whose message names the
field and what was expected. Optional fields that are None are left off the wire.
Field optionality follows the `openai` SDK models (`openai.types.realtime`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
import pybase64

from pivox.core.errors import ProtocolError
from pivox.core.events import (
    AudioCleared,
    AudioCommitted,
    AudioDelta,
    AudioDone,
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
    InputTranscriptDelta,
    ItemCreated,
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
    SemanticVad,
    ServerEvent,
    ServerVad,
    SessionConfig,
    SessionCreated,
    SessionUpdate,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TextDone,
    Tool,
    TranscriptDelta,
    TranscriptDone,
    Unknown,
    UserText,
)

__all__ = [
    "MAX_FRAME_BYTES",
    "decode_client_event",
    "decode_server_event",
    "encode_client_event",
    "encode_server_event",
    "server_wire_type",
]

MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
"""Largest frame the decoders accept (bytes; characters for a str frame): a security limit.

16 MiB holds ~5.8 min of 24 kHz PCM16 as base64, far above any single delta the API sends.
"""

Frame = str | bytes | bytearray | memoryview

# --------------------------------------------------------------------------- value kinds


class _Invalid(Exception):
    """Internal: the frame broke the contract; the public decoders return it as ProtocolError."""


_REQUIRED: Final = object()
_MISSING: Final = object()

_JSON_TYPE_NAMES: Final[Mapping[type, str]] = {
    str: "string",
    int: "int",
    float: "float",
    bool: "bool",
    type(None): "null",
    list: "array",
    dict: "object",
}


def _type_name(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _wrong_type(path: str, expected: str, value: object) -> _Invalid:
    return _Invalid(f"field '{path}' must be {expected}, got {_type_name(value)}")


def _wrong_value(path: str, expected: str, value: object) -> _Invalid:
    shown = repr(value)
    return _Invalid(f"field '{path}' must be {expected}, got {shown[:40]}")


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class _Kind:
    """How one JSON value is checked and converted: `read(value, path)`, `write(value)`.

    A value whose type is in `taken_as_is` is valid and read as itself (no `read` call).
    """

    expected: str
    read: Callable[[Any, str], Any]
    write: Callable[[Any], Any] = _identity
    taken_as_is: tuple[type, ...] = ()


def _typed(
    expected: str,
    types: tuple[type, ...],
    accept: Callable[[Any], bool] | None = None,
    write: Callable[[Any], Any] = _identity,
) -> _Kind:
    """A kind whose JSON type is one of `types` (bool is never an int) and passes `accept`."""

    def read(value: Any, path: str) -> Any:
        if type(value) not in types:
            raise _wrong_type(path, expected, value)
        if accept is not None and not accept(value):
            raise _wrong_value(path, expected, value)
        return value

    return _Kind(expected, read, write, types if accept is None else ())


def _one_of(*values: object) -> _Kind:
    """A kind that accepts exactly these values (and their JSON types)."""
    shown = ", ".join(repr(v) for v in values)
    expected = shown if len(values) == 1 else f"one of {shown}"
    return _typed(expected, tuple({type(v) for v in values}), lambda v: v in values)


_STR: Final = _typed("a string", (str,))
_OPT_STR: Final = _typed("a string or null", (str, type(None)))
_INT: Final = _typed("an integer", (int,))
_NUMBER: Final = _typed("a number", (int, float))
_BOOL: Final = _typed("a boolean", (bool,))
_OBJ: Final = _typed("an object", (dict,), write=dict)
_OPT_OBJ: Final = _typed("an object or null", (dict, type(None)), write=dict)
_UNIT: Final = _typed("a number between 0 and 1", (int, float), lambda v: 0 <= v <= 1)
_MS: Final = _typed("a non-negative integer", (int,), lambda v: v >= 0)


def _read_pcm(value: Any, path: str) -> bytes:
    # One pass: orjson already gave us the str; pybase64 decodes it (SIMD) straight to bytes.
    if type(value) is not str:
        raise _wrong_type(path, "base64 text", value)
    try:
        pcm = pybase64.b64decode(value, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        reason = str(exc).lower()
        raise _Invalid(
            f"field '{path}' must be base64 text, got invalid base64 ({reason})"
        ) from None
    if len(pcm) % 2:
        raise _Invalid(
            f"field '{path}' must be pcm16 audio of whole 2-byte samples, got {len(pcm)} bytes"
        )
    return pcm


def _write_pcm(pcm: bytes) -> str:
    return pybase64.b64encode(pcm).decode("ascii")


_PCM16: Final = _Kind("base64 text", _read_pcm, _write_pcm)


def _tuple_of(item: _Kind, expected: str) -> _Kind:
    """A JSON array of `item` (`expected` describes it), read as a tuple."""

    def read(value: Any, path: str) -> tuple[Any, ...]:
        if type(value) is not list:
            raise _wrong_type(path, expected, value)
        return tuple(item.read(v, f"{path}[{i}]") for i, v in enumerate(value))

    return _Kind(expected, read, lambda v: [item.write(x) for x in v])


# --------------------------------------------------------------------------- fields and records


FieldReader = Callable[[dict[str, Any], str], Any]


@dataclass(frozen=True, slots=True)
class _Field:
    """One wire key (dotted for nesting) ⇄ one attribute; `attr` "" is a constant `default`.

    `read(obj, prefix)` is the field's value in `obj`, checked and converted (`prefix` is the
    path of `obj` in error messages).
    """

    attr: str
    kind: _Kind
    wire: str
    keys: tuple[str, ...]
    default: Any
    read: FieldReader


def _field(attr: str, kind: _Kind, wire: str = "", default: Any = _REQUIRED) -> _Field:
    wire = wire or attr
    keys = tuple(wire.split("."))
    return _Field(attr, kind, wire, keys, default, _reader(wire, keys, kind, default))


def _reader(wire: str, keys: tuple[str, ...], kind: _Kind, default: Any) -> FieldReader:
    """A field's `read`: the hot path of every decode, so a closure with nothing to look up,
    and no path string built for a top-level key."""
    nested = len(keys) > 1
    read_kind, taken_as_is = kind.read, kind.taken_as_is

    def read(obj: dict[str, Any], prefix: str) -> Any:
        value = _get(obj, keys, prefix) if nested else obj.get(wire, _MISSING)
        if type(value) in taken_as_is:
            return value
        if value is _MISSING:
            if default is _REQUIRED:
                raise _Invalid(f"field '{prefix}{wire}' is missing, expected {kind.expected}")
            return default
        return read_kind(value, prefix + wire)

    return read


def _const(wire: str, value: Any, kind: _Kind | None = None) -> _Field:
    """A wire key that always holds `value` (checked on read when present, written on write)."""
    return _field("", kind or _one_of(value), wire, value)


def _get(obj: dict[str, Any], keys: tuple[str, ...], prefix: str) -> Any:
    """The value at `keys` under `obj`, or _MISSING (an absent or null parent counts as missing)."""
    value: Any = obj
    for depth, key in enumerate(keys):
        if value is None:
            return _MISSING
        if type(value) is not dict:
            raise _wrong_type(prefix + ".".join(keys[:depth]), "an object", value)
        value = value.get(key, _MISSING)
        if value is _MISSING:
            break
    return value


def _write_fields(record: Any, fields: tuple[_Field, ...]) -> dict[str, Any]:
    """The wire object of `record`; None values of optional (default None) fields are left off."""
    out: dict[str, Any] = {}
    for f in fields:
        if not f.attr:
            value = f.default
        else:
            value = getattr(record, f.attr)
            if value is None and f.default is None:
                continue
            value = f.kind.write(value)
        target = out
        for key in f.keys[:-1]:
            target = target.setdefault(key, {})
        target[f.keys[-1]] = value
    return out


def _always(value: Any) -> Callable[[], Any]:
    return lambda: value


def _builder(cls: type, fields: tuple[_Field, ...], **fixed: Any) -> FieldReader:
    """Read `fields` from an object into a new `cls`, a frozen slotted dataclass.

    Slot by slot, as the class's own __init__ would, but twice as fast: no keyword dict and no
    generic setattr per field. Attributes no field reads are `fixed` or their defaults.
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}.__post_init__ would be skipped")
    setters = {f.name: getattr(cls, f.name).__set__ for f in dataclasses.fields(cls)}
    steps = tuple((f.read, setters.pop(f.attr) if f.attr else None) for f in fields)
    if unknown := set(fixed) - set(setters):
        raise TypeError(f"{cls.__name__} has no {', '.join(sorted(unknown))} to fix")
    rest: list[tuple[Callable[[Any, Any], None], Callable[[], Any]]] = []
    for f in dataclasses.fields(cls):
        if f.name not in setters:
            continue
        if f.name in fixed:
            rest.append((setters[f.name], _always(fixed[f.name])))
        elif f.default is not dataclasses.MISSING:
            rest.append((setters[f.name], _always(f.default)))
        elif f.default_factory is not dataclasses.MISSING:
            rest.append((setters[f.name], f.default_factory))
        else:
            raise TypeError(f"{cls.__name__}.{f.name} is neither read nor defaulted")
    new = object.__new__

    def build(obj: dict[str, Any], prefix: str) -> Any:
        instance: Any = new(cls)
        for read, set_value in steps:
            value = read(obj, prefix)
            if set_value is not None:
                set_value(instance, value)
        for set_value, make in rest:
            set_value(instance, make())
        return instance

    return build


def _record(cls: type, fields: tuple[_Field, ...]) -> _Kind:
    """A JSON object ⇄ an instance of `cls` built from `fields`."""
    build = _builder(cls, fields)

    def read(value: Any, path: str) -> Any:
        if type(value) is not dict:
            raise _wrong_type(path, "an object", value)
        return build(value, path + ".")

    return _Kind("an object", read, lambda record: _write_fields(record, fields))


def _shape(fields: tuple[_Field, ...]) -> _Kind:
    """A JSON object whose keys are checked against `fields` and kept as they are."""

    def read(value: Any, path: str) -> Any:
        if type(value) is not dict:
            raise _wrong_type(path, "an object", value)
        for f in fields:
            f.read(value, path + ".")
        return value

    return _Kind("an object", read)


# --------------------------------------------------------------------------- event tables


@dataclass(frozen=True, slots=True)
class _Spec:
    """One event: its class, wire names (GA, beta) and fields; `beta_fields` if they differ."""

    cls: type
    ga: str
    beta: str
    fields: tuple[_Field, ...]
    beta_fields: tuple[_Field, ...] | None = None

    def wire(self, dialect: Dialect) -> str:
        return self.beta if dialect == "beta" else self.ga

    def wire_fields(self, dialect: Dialect) -> tuple[_Field, ...]:
        return self.beta_fields if dialect == "beta" and self.beta_fields else self.fields


_EVENT_ID: Final = _field("event_id", _OPT_STR, default=None)
_RESPONSE_ID: Final = _field("response_id", _STR)
_ITEM_ID: Final = _field("item_id", _STR)
_OUTPUT_INDEX: Final = _field("output_index", _INT)
_CONTENT_INDEX: Final = _field("content_index", _INT)
_PART: Final = (_RESPONSE_ID, _ITEM_ID, _OUTPUT_INDEX, _CONTENT_INDEX)


def _spec(cls: type, ga: str, *fields: _Field, beta: str = "") -> _Spec:
    return _Spec(cls, ga, beta or ga, (_EVENT_ID, *fields))


_ERROR_INFO: Final = _record(
    ErrorInfo,
    (
        _field("type", _STR),
        _field("code", _OPT_STR, default=None),
        _field("message", _STR),
        _field("param", _OPT_STR, default=None),
        _field("event_id", _OPT_STR, default=None),
    ),
)
_RATE_LIMITS: Final = _tuple_of(
    _record(
        RateLimit,
        (
            _field("name", _STR),
            _field("limit", _INT),
            _field("remaining", _INT),
            _field("reset_seconds", _NUMBER),
        ),
    ),
    "an array of rate limit objects",
)

_SERVER_SPECS: Final = (
    _spec(SessionCreated, "session.created", _field("session", _OBJ)),
    _spec(SessionUpdated, "session.updated", _field("session", _OBJ)),
    _spec(Error, "error", _field("error", _ERROR_INFO)),
    _spec(
        SpeechStarted,
        "input_audio_buffer.speech_started",
        _field("audio_start_ms", _INT),
        _ITEM_ID,
    ),
    _spec(
        SpeechStopped,
        "input_audio_buffer.speech_stopped",
        _field("audio_end_ms", _INT),
        _ITEM_ID,
    ),
    _spec(
        AudioCommitted,
        "input_audio_buffer.committed",
        _ITEM_ID,
        _field("previous_item_id", _OPT_STR, default=None),
    ),
    _spec(AudioCleared, "input_audio_buffer.cleared"),
    _spec(
        ItemCreated,
        "conversation.item.added",
        _field("item", _OBJ),
        _field("previous_item_id", _OPT_STR, default=None),
        beta="conversation.item.created",
    ),
    # `response_id` is `response.id`: written into the response object, read back from it.
    _spec(
        ResponseCreated,
        "response.created",
        _field("response", _OBJ),
        _field("response_id", _STR, "response.id"),
    ),
    _spec(
        ResponseDone,
        "response.done",
        _field("response", _OBJ),
        _field("response_id", _STR, "response.id"),
        _field("status", _STR, "response.status"),
    ),
    _spec(
        OutputItemAdded,
        "response.output_item.added",
        _RESPONSE_ID,
        _OUTPUT_INDEX,
        _field("item", _OBJ),
    ),
    _spec(
        OutputItemDone,
        "response.output_item.done",
        _RESPONSE_ID,
        _OUTPUT_INDEX,
        _field("item", _OBJ),
    ),
    _spec(
        AudioDelta,
        "response.output_audio.delta",
        *_PART,
        _field("audio", _PCM16, "delta"),
        beta="response.audio.delta",
    ),
    _spec(AudioDone, "response.output_audio.done", *_PART, beta="response.audio.done"),
    _spec(
        TextDelta,
        "response.output_text.delta",
        *_PART,
        _field("delta", _STR),
        beta="response.text.delta",
    ),
    _spec(
        TextDone,
        "response.output_text.done",
        *_PART,
        _field("text", _STR),
        beta="response.text.done",
    ),
    _spec(
        TranscriptDelta,
        "response.output_audio_transcript.delta",
        *_PART,
        _field("delta", _STR),
        beta="response.audio_transcript.delta",
    ),
    _spec(
        TranscriptDone,
        "response.output_audio_transcript.done",
        *_PART,
        _field("transcript", _STR),
        beta="response.audio_transcript.done",
    ),
    _spec(
        FunctionCallDelta,
        "response.function_call_arguments.delta",
        _RESPONSE_ID,
        _ITEM_ID,
        _OUTPUT_INDEX,
        _field("call_id", _STR),
        _field("delta", _STR),
    ),
    _spec(
        FunctionCallDone,
        "response.function_call_arguments.done",
        _RESPONSE_ID,
        _ITEM_ID,
        _OUTPUT_INDEX,
        _field("call_id", _STR),
        _field("name", _STR),
        _field("arguments", _STR),
    ),
    _spec(RateLimitsUpdated, "rate_limits.updated", _field("rate_limits", _RATE_LIMITS)),
    # The SDK marks content_index and delta optional on this one event.
    _spec(
        InputTranscriptDelta,
        "conversation.item.input_audio_transcription.delta",
        _ITEM_ID,
        _field("content_index", _INT, default=0),
        _field("delta", _STR, default=""),
    ),
    _spec(
        InputTranscriptCompleted,
        "conversation.item.input_audio_transcription.completed",
        _ITEM_ID,
        _CONTENT_INDEX,
        _field("transcript", _STR),
    ),
)
_SERVER_BY_CLASS: Final = {spec.cls: spec for spec in _SERVER_SPECS}
_ITEM_DONE: Final = "conversation.item.done"

Decoder = Callable[[dict[str, Any]], Any]


def _decoder(spec: _Spec, **fixed: Any) -> Decoder:
    """The decoder of one spec; `fixed` keywords come from the wire type, not the payload."""
    build = _builder(spec.cls, spec.fields, **fixed)
    return lambda obj: build(obj, "")


def _decode_unknown(obj: dict[str, Any]) -> Unknown:
    event_id = _EVENT_ID.read(obj, "")
    return Unknown(event_id=event_id, type=obj["type"], payload=obj)


_SERVER_DECODERS: Final[Mapping[str, Decoder]] = {
    **{spec.ga: _decoder(spec) for spec in _SERVER_SPECS},
    **{spec.beta: _decoder(spec) for spec in _SERVER_SPECS},
    _ITEM_DONE: _decoder(_SERVER_BY_CLASS[ItemCreated], done=True),
}

# --------------------------------------------------------------------------- session.update

# The only audio format pivox speaks; beta calls it "pcm16". Anything else is refused.
_AUDIO_PCM: Final = _shape((_const("type", "audio/pcm"), _const("rate", 24000)))
_MODALITIES: Final = _tuple_of(_one_of("audio", "text"), "an array of modalities")
_TOOLS: Final = _tuple_of(
    _record(
        Tool,
        (
            _const("type", "function"),
            _field("name", _STR),
            _field("description", _STR, default=""),
            _field("parameters", _OBJ, default={}),
        ),
    ),
    "an array of function tools",
)
_TURN_DETECTIONS: Final[Mapping[str, tuple[type, _Kind]]] = {
    "server_vad": (
        ServerVad,
        _record(
            ServerVad,
            (
                _const("type", "server_vad"),
                _field("threshold", _UNIT, default=ServerVad().threshold),
                _field("prefix_padding_ms", _MS, default=ServerVad().prefix_padding_ms),
                _field("silence_duration_ms", _MS, default=ServerVad().silence_duration_ms),
                _field("create_response", _BOOL, default=ServerVad().create_response),
                _field("interrupt_response", _BOOL, default=ServerVad().interrupt_response),
            ),
        ),
    ),
    "semantic_vad": (
        SemanticVad,
        _record(
            SemanticVad,
            (
                _const("type", "semantic_vad"),
                _field(
                    "eagerness",
                    _one_of("low", "medium", "high", "auto"),
                    default=SemanticVad().eagerness,
                ),
            ),
        ),
    ),
}
_TURN_DETECTION_BY_CLASS: Final = {cls: kind for cls, kind in _TURN_DETECTIONS.values()}
_TURN_TYPE_FIELD: Final = _field("type", _one_of(*_TURN_DETECTIONS))


def _read_turn_detection(value: Any, path: str) -> Any:
    if value is None:
        return None  # null turns VAD off
    if type(value) is not dict:
        raise _wrong_type(path, "an object or null", value)
    tag = _TURN_TYPE_FIELD.read(value, path + ".")
    return _TURN_DETECTIONS[tag][1].read(value, path)


def _write_turn_detection(value: Any) -> Any:
    return None if value is None else _TURN_DETECTION_BY_CLASS[type(value)].write(value)


_TURN_DETECTION: Final = _Kind("an object or null", _read_turn_detection, _write_turn_detection)
_DEFAULT_TURN_DETECTION: Final = SessionConfig().turn_detection


_MODEL: Final = _field("model", _STR)


def _read_transcription(value: Any, path: str) -> str | None:
    """`{model}` turns input transcription on with that model; null turns it off."""
    if value is None:
        return None
    if type(value) is not dict:
        raise _wrong_type(path, "an object or null", value)
    return _MODEL.read(value, path + ".")  # type: ignore[no-any-return]


_TRANSCRIPTION: Final = _Kind(
    "an object or null", _read_transcription, lambda model: {"model": model}
)

_SESSION_FIELDS: Final[Mapping[Dialect, tuple[_Field, ...]]] = {
    "ga": (
        _const("type", "realtime"),
        _field("instructions", _STR, default=""),
        _const("output_modalities", ["audio"], _MODALITIES),
        _const("audio.input.format", {"type": "audio/pcm", "rate": 24000}, _AUDIO_PCM),
        _field(
            "turn_detection",
            _TURN_DETECTION,
            "audio.input.turn_detection",
            _DEFAULT_TURN_DETECTION,
        ),
        _field("transcription_model", _TRANSCRIPTION, "audio.input.transcription", None),
        _const("audio.output.format", {"type": "audio/pcm", "rate": 24000}, _AUDIO_PCM),
        _field("voice", _STR, "audio.output.voice", "alloy"),
        _field("tools", _TOOLS, default=()),
        _field("tool_choice", _STR, default="auto"),
    ),
    "beta": (
        _const("modalities", ["audio", "text"], _MODALITIES),
        _field("instructions", _STR, default=""),
        _field("voice", _STR, default="alloy"),
        _const("input_audio_format", "pcm16"),
        _const("output_audio_format", "pcm16"),
        _field("turn_detection", _TURN_DETECTION, default=_DEFAULT_TURN_DETECTION),
        _field("transcription_model", _TRANSCRIPTION, "input_audio_transcription", None),
        _field("tools", _TOOLS, default=()),
        _field("tool_choice", _STR, default="auto"),
    ),
}
_SESSION_RECORDS: Final = {
    dialect: _record(SessionConfig, fields) for dialect, fields in _SESSION_FIELDS.items()
}
_TOP_KEYS: Final = {
    dialect: {f.keys[0] for f in fields} for dialect, fields in _SESSION_FIELDS.items()
}
# A key of the other shape is refused, not ignored: a GA `turn_detection` at the top level
# would otherwise be silently dropped and leave server VAD on.
_FOREIGN_KEYS: Final[Mapping[Dialect, frozenset[str]]] = {
    "ga": frozenset(_TOP_KEYS["beta"] - _TOP_KEYS["ga"]),
    "beta": frozenset(_TOP_KEYS["ga"] - _TOP_KEYS["beta"]),
}


def _read_session(value: Any, path: str) -> SessionConfig:
    """Either `session` shape: GA carries `type: "realtime"`, beta has no `type`."""
    if type(value) is not dict:
        raise _wrong_type(path, "an object", value)
    dialect: Dialect = "ga" if "type" in value else "beta"
    foreign = sorted(_FOREIGN_KEYS[dialect].intersection(value))
    if foreign:
        raise _Invalid(
            f"field '{path}.{foreign[0]}' belongs to the other session shape, expected the "
            f"{dialect} shape (ga has session.type 'realtime', beta has no type)"
        )
    return _SESSION_RECORDS[dialect].read(value, path)  # type: ignore[no-any-return]


def _session_kind(dialect: Dialect) -> _Kind:
    return _Kind("an object", _read_session, _SESSION_RECORDS[dialect].write)


# --------------------------------------------------------------------------- client tables

_ITEM_CREATE: Final = "conversation.item.create"


_INPUT_TEXT_TYPE: Final = _field("type", _one_of("input_text"))
_TEXT: Final = _field("text", _STR)


def _read_user_content(value: Any, path: str) -> str:
    if type(value) is not list:
        raise _wrong_type(path, "an array of one input_text part", value)
    if len(value) != 1:
        raise _Invalid(f"field '{path}' must be an array of one input_text part, got {len(value)}")
    part = value[0]
    if type(part) is not dict:
        raise _wrong_type(f"{path}[0]", "an object", part)
    _INPUT_TEXT_TYPE.read(part, f"{path}[0].")
    return _TEXT.read(part, f"{path}[0].")  # type: ignore[no-any-return]


_USER_CONTENT: Final = _Kind(
    "an array of one input_text part",
    _read_user_content,
    lambda text: [{"type": "input_text", "text": text}],
)

def _read_one_message(value: Any, path: str) -> str:
    if type(value) is not list or len(value) != 1:
        raise _wrong_type(path, "an array of one user message", value)
    item = value[0]
    if type(item) is not dict:
        raise _wrong_type(f"{path}[0]", "an object", item)
    _MESSAGE_TYPE.read(item, f"{path}[0].")
    _USER_ROLE.read(item, f"{path}[0].")
    return _read_user_content(item.get("content"), f"{path}[0].content")


_MESSAGE_TYPE: Final = _const("type", "message")
_USER_ROLE: Final = _const("role", "user")
_ONE_USER_MESSAGE: Final = _Kind(
    "an array of one user message",
    _read_one_message,
    lambda text: [{"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": text}]}],
)
MAX_METADATA_PAIRS: Final = 16
"""The API's limit on `metadata`: 16 pairs, keys up to 64 chars, values up to 512."""
_METADATA: Final = _typed(
    "an object of at most 16 short strings", (dict,),
    lambda v: len(v) <= MAX_METADATA_PAIRS and all(
        len(k) <= 64 and type(x) is str and len(x) <= 512 for k, x in v.items()),
    write=dict,
)


def _out_of_band_fields(modalities: _Field) -> tuple[_Field, ...]:
    return (
        _EVENT_ID,
        _const("response.conversation", "none"),
        _field("instructions", _STR, "response.instructions"),
        _field("text", _ONE_USER_MESSAGE, "response.input"),
        _field("metadata", _METADATA, "response.metadata"),
        modalities,
    )


_CLIENT_SPECS: Final = (
    _Spec(
        SessionUpdate,
        "session.update",
        "session.update",
        (_EVENT_ID, _field("session", _session_kind("ga"))),
        (_EVENT_ID, _field("session", _session_kind("beta"))),
    ),
    _spec(InputAudioAppend, "input_audio_buffer.append", _field("audio", _PCM16)),
    _spec(InputAudioCommit, "input_audio_buffer.commit"),
    _spec(InputAudioClear, "input_audio_buffer.clear"),
    _spec(
        UserText,
        _ITEM_CREATE,
        _const("item.type", "message"),
        _const("item.role", "user"),
        _field("text", _USER_CONTENT, "item.content"),
    ),
    _spec(
        FunctionCallOutput,
        _ITEM_CREATE,
        _const("item.type", "function_call_output"),
        _field("call_id", _STR, "item.call_id"),
        _field("output", _STR, "item.output"),
    ),
    _spec(ResponseCreate, "response.create", _field("response", _OPT_OBJ, default=None)),
    _Spec(
        OutOfBandResponse,
        "response.create",
        "response.create",
        _out_of_band_fields(_const("response.output_modalities", ["audio"], _MODALITIES)),
        _out_of_band_fields(_const("response.modalities", ["audio", "text"], _MODALITIES)),
    ),
    _spec(ResponseCancel, "response.cancel", _field("response_id", _OPT_STR, default=None)),
    _spec(
        ItemTruncate,
        "conversation.item.truncate",
        _ITEM_ID,
        _CONTENT_INDEX,
        _field("audio_end_ms", _MS),
    ),
)
_CLIENT_BY_CLASS: Final = {spec.cls: spec for spec in _CLIENT_SPECS}
_ITEM_DECODERS: Final[Mapping[str, Decoder]] = {
    "message": _decoder(_CLIENT_BY_CLASS[UserText]),
    "function_call_output": _decoder(_CLIENT_BY_CLASS[FunctionCallOutput]),
}
_ITEM_TYPE: Final = _field("", _one_of(*_ITEM_DECODERS), "item.type")


def _decode_item_create(obj: dict[str, Any]) -> Any:
    return _ITEM_DECODERS[_ITEM_TYPE.read(obj, "")](obj)


_DECODE_RESPONSE_CREATE: Final = _decoder(_CLIENT_BY_CLASS[ResponseCreate])
_DECODE_OUT_OF_BAND: Final = _builder(
    OutOfBandResponse, _CLIENT_BY_CLASS[OutOfBandResponse].fields[:-1])  # either modalities


def _decode_response_create(obj: dict[str, Any]) -> Any:
    response = obj.get("response")
    if type(response) is dict and response.get("conversation") == "none" and "input" in response:
        return _DECODE_OUT_OF_BAND(obj, "")
    return _DECODE_RESPONSE_CREATE(obj)


def _refuse_unknown_client(obj: dict[str, Any]) -> ClientEvent:
    raise _Invalid(f"unknown client event type, expected one of {_CLIENT_TYPES}")


_CLIENT_DECODERS: Final[Mapping[str, Decoder]] = {
    **{spec.ga: _decoder(spec) for spec in _CLIENT_SPECS if spec.ga != _ITEM_CREATE},
    _ITEM_CREATE: _decode_item_create,
    "response.create": _decode_response_create,
}
_CLIENT_TYPES: Final = ", ".join(sorted(_CLIENT_DECODERS))

# --------------------------------------------------------------------------- public API


def _unparsable(frame: Frame, exc: orjson.JSONDecodeError) -> str:
    """Why orjson refused `frame`, told in terms of what was expected (error path only)."""
    raw = frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else bytes(frame)
    if not raw.strip():
        return "frame is empty or whitespace only, expected a json object"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"frame is not valid utf-8 ({err.reason} at offset {err.start}), expected json text"
    return f"frame is not valid json ({str(exc).lower()}), expected a json object"


def _parse(frame: Frame) -> dict[str, Any]:
    size = frame.nbytes if isinstance(frame, memoryview) else len(frame)
    if size > MAX_FRAME_BYTES:
        raise _Invalid(f"frame of {size} bytes is over the limit of {MAX_FRAME_BYTES} bytes")
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise _Invalid(_unparsable(frame, exc)) from None
    if type(obj) is not dict:
        raise _Invalid(f"frame must be a json object, got {_type_name(obj)}")
    return obj


_TYPE: Final = _field("type", _STR)


def _decode(frame: Frame, decoders: Mapping[str, Decoder], fallback: Decoder) -> Any:
    event_type: str | None = None
    try:
        obj = _parse(frame)
        event_type = _TYPE.read(obj, "")
        return decoders.get(event_type, fallback)(obj)
    except _Invalid as exc:
        return ProtocolError(str(exc), event_type=event_type)


def decode_server_event(frame: Frame) -> ServerEvent | ProtocolError:
    """One server frame (GA or beta names) as a unified event; a bad frame as ProtocolError."""
    return _decode(frame, _SERVER_DECODERS, _decode_unknown)  # type: ignore[no-any-return]


def decode_client_event(frame: Frame) -> ClientEvent | ProtocolError:
    """One client frame (either dialect's shape) as a ClientEvent; a bad one as ProtocolError."""
    return _decode(frame, _CLIENT_DECODERS, _refuse_unknown_client)  # type: ignore[no-any-return]


def server_wire_type(event_cls: type, dialect: Dialect) -> str:
    """The wire `type` of a server variant in `dialect`; ValueError for Unknown (none fixed)."""
    spec = _SERVER_BY_CLASS.get(event_cls)
    if spec is None:
        raise ValueError(f"{event_cls.__name__} has no fixed wire type")
    return spec.wire(dialect)


def _dumps(wire_type: str, body: dict[str, Any]) -> str:
    return orjson.dumps({"type": wire_type, **body}).decode()


def encode_server_event(event: ServerEvent, dialect: Dialect = "ga") -> str:
    """`event` as a server frame with `dialect`'s names (used by the bundled test server).

    Unknown is written as its payload with `type` and `event_id` taken from the event.
    """
    if isinstance(event, Unknown):
        body = dict(event.payload)
        if event.event_id is not None:
            body["event_id"] = event.event_id
        return _dumps(event.type, body)
    spec = _SERVER_BY_CLASS[type(event)]
    wire_type = spec.wire(dialect)
    if dialect == "ga" and isinstance(event, ItemCreated) and event.done:
        wire_type = _ITEM_DONE  # beta has no item.done: there it stays item.created
    return _dumps(wire_type, _write_fields(event, spec.fields))


def encode_client_event(event: ClientEvent, dialect: Dialect = "ga") -> str:
    """`event` as a client frame; only `session.update` differs between GA and beta."""
    spec = _CLIENT_BY_CLASS[type(event)]
    return _dumps(spec.wire(dialect), _write_fields(event, spec.wire_fields(dialect)))
