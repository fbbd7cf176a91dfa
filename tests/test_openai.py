"""pivox.protocol.openai: one table of wire cases drives decode and encode, both dialects."""

from __future__ import annotations

import base64
import typing
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from pivox.core.errors import ProtocolError
from pivox.core.events import (
    AudioCleared,
    AudioCommitted,
    AudioDelta,
    AudioDone,
    CallId,
    ClientEvent,
    Error,
    ErrorInfo,
    FunctionCallDelta,
    FunctionCallDone,
    FunctionCallOutput,
    GoAway,
    InputAudioAppend,
    InputAudioClear,
    InputAudioCommit,
    InputTranscriptCompleted,
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
    TextDelta,
    TextDone,
    Tool,
    TranscriptDelta,
    TranscriptDone,
    Unknown,
    UserText,
)
from pivox.protocol import openai as codec
from pivox.protocol.openai import (
    MAX_FRAME_BYTES,
    decode_client_event,
    decode_server_event,
    encode_client_event,
    encode_server_event,
    server_wire_type,
)

PCM = bytes(range(256)) * 4  # 1024 bytes = 512 samples
PCM_B64 = base64.b64encode(PCM).decode()
RESP, ITEM, CALL = ResponseId("resp_C1xY"), ItemId("item_C1xZ"), CallId("call_9a")
PART = {"response_id": RESP, "item_id": ITEM, "output_index": 0, "content_index": 0}
ASSISTANT_ITEM = {
    "id": ITEM,
    "object": "realtime.item",
    "type": "message",
    "status": "in_progress",
    "role": "assistant",
    "content": [{"type": "output_audio", "transcript": "Hello"}],
}
RESPONSE = {
    "id": RESP,
    "object": "realtime.response",
    "status": "completed",
    "status_details": None,
    "output": [ASSISTANT_ITEM],
    "usage": {"total_tokens": 42, "input_tokens": 30, "output_tokens": 12},
}
SESSION = {"type": "realtime", "id": "sess_1", "model": "gpt-realtime", "instructions": "Hi."}


@dataclass(frozen=True)
class ServerCase:
    """A server event, its GA and beta wire types, and the rest of its wire object."""

    event: ServerEvent
    ga: str
    beta: str
    body: dict[str, Any]

    def frame(self, dialect: str) -> dict[str, Any]:
        return {"type": self.ga if dialect == "ga" else self.beta, **self.body}


def _same(event: ServerEvent, wire: str, body: dict[str, Any]) -> ServerCase:
    return ServerCase(event, wire, wire, body)


SERVER_CASES = [
    _same(
        SessionCreated(event_id="e1", session=SESSION),
        "session.created",
        {"event_id": "e1", "session": SESSION},
    ),
    _same(
        SessionUpdated(event_id="e2", session=SESSION),
        "session.updated",
        {"event_id": "e2", "session": SESSION},
    ),
    _same(
        Error(
            event_id="e3",
            error=ErrorInfo(
                type="invalid_request_error",
                code="response_cancel_not_active",
                message="Cancellation failed: no active response found",
                event_id="client_7",
            ),
        ),
        "error",
        {
            "event_id": "e3",
            "error": {
                "type": "invalid_request_error",
                "code": "response_cancel_not_active",
                "message": "Cancellation failed: no active response found",
                "event_id": "client_7",
            },
        },
    ),
    _same(
        Error(event_id="e4", error=ErrorInfo(type="server_error", message="boom", param="x")),
        "error",
        {"event_id": "e4", "error": {"type": "server_error", "message": "boom", "param": "x"}},
    ),
    _same(
        SpeechStarted(event_id="e5", audio_start_ms=1000, item_id=ITEM),
        "input_audio_buffer.speech_started",
        {"event_id": "e5", "audio_start_ms": 1000, "item_id": ITEM},
    ),
    _same(
        SpeechStopped(event_id="e6", audio_end_ms=2000, item_id=ITEM),
        "input_audio_buffer.speech_stopped",
        {"event_id": "e6", "audio_end_ms": 2000, "item_id": ITEM},
    ),
    _same(
        AudioCommitted(event_id="e7", item_id=ITEM, previous_item_id=ItemId("item_0")),
        "input_audio_buffer.committed",
        {"event_id": "e7", "item_id": ITEM, "previous_item_id": "item_0"},
    ),
    _same(AudioCommitted(item_id=ITEM), "input_audio_buffer.committed", {"item_id": ITEM}),
    _same(AudioCleared(event_id="e8"), "input_audio_buffer.cleared", {"event_id": "e8"}),
    ServerCase(
        ItemCreated(event_id="e9", item=ASSISTANT_ITEM, previous_item_id=ItemId("item_0")),
        "conversation.item.added",
        "conversation.item.created",
        {"event_id": "e9", "item": ASSISTANT_ITEM, "previous_item_id": "item_0"},
    ),
    _same(
        ResponseCreated(
            event_id="e10", response_id=RESP, response={"id": RESP, "status": "in_progress"}
        ),
        "response.created",
        {"event_id": "e10", "response": {"id": RESP, "status": "in_progress"}},
    ),
    _same(
        ResponseDone(event_id="e11", response_id=RESP, status="completed", response=RESPONSE),
        "response.done",
        {"event_id": "e11", "response": RESPONSE},
    ),
    _same(
        OutputItemAdded(event_id="e12", response_id=RESP, output_index=0, item=ASSISTANT_ITEM),
        "response.output_item.added",
        {"event_id": "e12", "response_id": RESP, "output_index": 0, "item": ASSISTANT_ITEM},
    ),
    _same(
        OutputItemDone(event_id="e13", response_id=RESP, output_index=1, item=ASSISTANT_ITEM),
        "response.output_item.done",
        {"event_id": "e13", "response_id": RESP, "output_index": 1, "item": ASSISTANT_ITEM},
    ),
    ServerCase(
        AudioDelta(event_id="e14", audio=PCM, **PART),
        "response.output_audio.delta",
        "response.audio.delta",
        {"event_id": "e14", **PART, "delta": PCM_B64},
    ),
    ServerCase(
        AudioDelta(event_id="e14b", audio=b"", **PART),
        "response.output_audio.delta",
        "response.audio.delta",
        {"event_id": "e14b", **PART, "delta": ""},
    ),
    ServerCase(
        AudioDone(event_id="e15", **PART),
        "response.output_audio.done",
        "response.audio.done",
        {"event_id": "e15", **PART},
    ),
    ServerCase(
        TextDelta(event_id="e16", delta="Hel", **PART),
        "response.output_text.delta",
        "response.text.delta",
        {"event_id": "e16", **PART, "delta": "Hel"},
    ),
    ServerCase(
        TextDone(event_id="e17", text="Hello ☀", **PART),
        "response.output_text.done",
        "response.text.done",
        {"event_id": "e17", **PART, "text": "Hello ☀"},
    ),
    ServerCase(
        TranscriptDelta(event_id="e18", delta="lo", **PART),
        "response.output_audio_transcript.delta",
        "response.audio_transcript.delta",
        {"event_id": "e18", **PART, "delta": "lo"},
    ),
    ServerCase(
        TranscriptDone(event_id="e19", transcript="Hello", **PART),
        "response.output_audio_transcript.done",
        "response.audio_transcript.done",
        {"event_id": "e19", **PART, "transcript": "Hello"},
    ),
    _same(
        FunctionCallDelta(
            event_id="e20",
            response_id=RESP,
            item_id=ITEM,
            output_index=0,
            call_id=CALL,
            delta='{"ci',
        ),
        "response.function_call_arguments.delta",
        {
            "event_id": "e20",
            "response_id": RESP,
            "item_id": ITEM,
            "output_index": 0,
            "call_id": CALL,
            "delta": '{"ci',
        },
    ),
    _same(
        FunctionCallDone(
            event_id="e21",
            response_id=RESP,
            item_id=ITEM,
            output_index=0,
            call_id=CALL,
            name="get_weather",
            arguments='{"city": "Oslo"}',
        ),
        "response.function_call_arguments.done",
        {
            "event_id": "e21",
            "response_id": RESP,
            "item_id": ITEM,
            "output_index": 0,
            "call_id": CALL,
            "name": "get_weather",
            "arguments": '{"city": "Oslo"}',
        },
    ),
    _same(
        RateLimitsUpdated(
            event_id="e22",
            rate_limits=(
                RateLimit(name="requests", limit=1000, remaining=999, reset_seconds=0.06),
                RateLimit(name="tokens", limit=50000, remaining=49000, reset_seconds=7),
            ),
        ),
        "rate_limits.updated",
        {
            "event_id": "e22",
            "rate_limits": [
                {"name": "requests", "limit": 1000, "remaining": 999, "reset_seconds": 0.06},
                {"name": "tokens", "limit": 50000, "remaining": 49000, "reset_seconds": 7},
            ],
        },
    ),
    _same(
        InputTranscriptDelta(event_id="e23", item_id=ITEM, content_index=0, delta="What"),
        "conversation.item.input_audio_transcription.delta",
        {"event_id": "e23", "item_id": ITEM, "content_index": 0, "delta": "What"},
    ),
    _same(
        InputTranscriptCompleted(event_id="e24", item_id=ITEM, content_index=0, transcript="What?"),
        "conversation.item.input_audio_transcription.completed",
        {"event_id": "e24", "item_id": ITEM, "content_index": 0, "transcript": "What?"},
    ),
]
DIALECTS = ["ga", "beta"]


def _id(case: ServerCase) -> str:
    return f"{type(case.event).__name__}-{case.body.get('event_id')}"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", SERVER_CASES, ids=_id)
def test_server_frame_decodes_to_its_variant(case: ServerCase, dialect: str) -> None:
    assert decode_server_event(orjson.dumps(case.frame(dialect))) == case.event


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", SERVER_CASES, ids=_id)
def test_server_event_encodes_to_its_frame(case: ServerCase, dialect: str) -> None:
    encoded = encode_server_event(case.event, dialect)  # type: ignore[arg-type]
    assert orjson.loads(encoded) == case.frame(dialect)
    assert decode_server_event(encoded) == case.event


@pytest.mark.parametrize("case", SERVER_CASES, ids=_id)
def test_server_wire_type_names_each_dialect(case: ServerCase) -> None:
    assert server_wire_type(type(case.event), "ga") == case.ga
    assert server_wire_type(type(case.event), "beta") == case.beta


def test_every_server_variant_and_wire_name_is_covered_and_documented() -> None:
    variants = set(typing.get_args(ServerEvent)) - {Unknown, GoAway}  # GoAway: Gemini only
    assert {type(c.event) for c in SERVER_CASES} == variants
    doc = codec.__doc__ or ""
    for case in SERVER_CASES:
        assert case.ga in doc and case.beta in doc and type(case.event).__name__ in doc


@pytest.mark.parametrize(
    "frame",
    [
        lambda b: b,
        lambda b: b.decode(),
        bytearray,
        memoryview,
        lambda b: orjson.dumps(orjson.loads(b), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
    ],
    ids=["bytes", "str", "bytearray", "memoryview", "reordered-and-indented"],
)
def test_every_frame_container_and_layout_decodes_alike(frame: Any) -> None:
    case = next(c for c in SERVER_CASES if isinstance(c.event, AudioDelta))
    assert decode_server_event(frame(orjson.dumps(case.frame("ga")))) == case.event


def test_item_done_is_ga_only() -> None:
    done = ItemCreated(event_id="e", item=ASSISTANT_ITEM, done=True)
    ga = orjson.loads(encode_server_event(done, "ga"))
    beta = orjson.loads(encode_server_event(done, "beta"))
    assert ga["type"] == "conversation.item.done"
    assert beta["type"] == "conversation.item.created"
    assert decode_server_event(orjson.dumps(ga)) == done
    # beta has no item.done: the flag is documented not to survive the beta round trip
    assert decode_server_event(orjson.dumps(beta)) == ItemCreated(event_id="e", item=ASSISTANT_ITEM)


def test_ga_servers_still_sending_item_created_are_understood() -> None:
    frame = {"type": "conversation.item.created", "event_id": "e", "item": ASSISTANT_ITEM}
    assert decode_server_event(orjson.dumps(frame)) == ItemCreated(
        event_id="e", item=ASSISTANT_ITEM
    )


def test_fields_the_model_does_not_carry_are_ignored() -> None:
    frame = {
        "type": "conversation.item.input_audio_transcription.completed",
        "event_id": "e",
        "item_id": ITEM,
        "content_index": 0,
        "transcript": "hi",
        "usage": {"type": "duration", "seconds": 1.5},
        "logprobs": None,
    }
    assert decode_server_event(orjson.dumps(frame)) == InputTranscriptCompleted(
        event_id="e", item_id=ITEM, content_index=0, transcript="hi"
    )


def test_sdk_optional_fields_of_input_transcript_delta_default() -> None:
    frame = {"type": "conversation.item.input_audio_transcription.delta", "item_id": ITEM}
    assert decode_server_event(orjson.dumps(frame)) == InputTranscriptDelta(
        item_id=ITEM, content_index=0, delta=""
    )


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "response.content_part.added", "event_id": "e", "part": {"type": "audio"}},
        {"type": "output_audio_buffer.started", "event_id": "e", "response_id": RESP},
        {"type": "conversation.item.truncated", "item_id": ITEM, "audio_end_ms": 1},
        {"type": "some.future.event", "event_id": None, "nested": [1, 2.5, {"x": None}]},
    ],
    ids=lambda f: f["type"],
)
def test_unknown_keeps_type_and_whole_payload(frame: dict[str, Any]) -> None:
    event = decode_server_event(orjson.dumps(frame))
    assert event == Unknown(event_id=frame.get("event_id"), type=frame["type"], payload=frame)
    assert orjson.loads(encode_server_event(event, "beta")) == frame  # type: ignore[arg-type]


def test_unknown_has_no_fixed_wire_type() -> None:
    with pytest.raises(ValueError, match="Unknown has no fixed wire type"):
        server_wire_type(Unknown, "ga")


# --------------------------------------------------------------------------- bad server frames


def _delta(**changes: Any) -> bytes:
    frame = {"type": "response.output_audio.delta", "event_id": "e", **PART, "delta": PCM_B64}
    frame.update(changes)
    return orjson.dumps({k: v for k, v in frame.items() if v is not ...})


BAD_SERVER_FRAMES = [
    # (frame, event_type, words the message must contain)
    (b'{"type": "response.done", "response": {"id": "r"', None, ["not valid json", "end of data"]),
    (b"", None, ["empty or whitespace only", "expected a json object"]),
    (b" \t\r\n ", None, ["empty or whitespace only", "expected a json object"]),
    (b'{"type": "error", "x": "\xff\xfe"}', None, ["not valid utf-8", "offset 24"]),
    ('{"type": "error", "x": "\ud800"}', None, ["not valid utf-8"]),
    (b"[1, 2]", None, ["must be a json object", "got array"]),
    (b'"response.done"', None, ["must be a json object", "got string"]),
    (b"null", None, ["must be a json object", "got null"]),
    (b"NaN", None, ["not valid json"]),
    (b"{}", None, ["field 'type' is missing", "expected a string"]),
    (b'{"type": 7}', None, ["field 'type' must be a string, got int"]),
    (
        _delta(delta=5),
        "response.output_audio.delta",
        ["field 'delta' must be base64 text, got int"],
    ),
    (
        _delta(delta="AAA*"),
        "response.output_audio.delta",
        ["field 'delta' must be base64 text, got invalid base64"],
    ),
    (_delta(delta="QUJ"), "response.output_audio.delta", ["invalid base64"]),
    (_delta(delta="AAAA\n"), "response.output_audio.delta", ["invalid base64"]),
    (_delta(delta="AAAÄ"), "response.output_audio.delta", ["invalid base64"]),
    (
        _delta(delta="AAAA"),
        "response.output_audio.delta",
        ["field 'delta' must be pcm16 audio of whole 2-byte samples, got 3 bytes"],
    ),
    (
        _delta(delta=...),
        "response.output_audio.delta",
        ["field 'delta' is missing, expected base64 text"],
    ),
    (
        _delta(item_id=None),
        "response.output_audio.delta",
        ["field 'item_id' must be a string, got null"],
    ),
    (
        _delta(output_index="0"),
        "response.output_audio.delta",
        ["field 'output_index' must be an integer, got string"],
    ),
    (
        _delta(content_index=True),
        "response.output_audio.delta",
        ["field 'content_index' must be an integer, got bool"],
    ),
    (
        _delta(content_index=1.0),
        "response.output_audio.delta",
        ["field 'content_index' must be an integer, got float"],
    ),
    (
        _delta(event_id=3),
        "response.output_audio.delta",
        ["field 'event_id' must be a string or null, got int"],
    ),
    (
        b'{"type": "response.done", "response": {"status": "completed"}}',
        "response.done",
        ["field 'response.id' is missing, expected a string"],
    ),
    (
        b'{"type": "response.done", "response": [1]}',
        "response.done",
        ["field 'response' must be an object, got array"],
    ),
    (
        b'{"type": "response.created", "response": {"id": 1}}',
        "response.created",
        ["field 'response.id' must be a string, got int"],
    ),
    (
        b'{"type": "error", "error": {"type": "x"}}',
        "error",
        ["field 'error.message' is missing, expected a string"],
    ),
    (
        b'{"type": "error", "error": {"type": "x", "message": "m", "code": 5}}',
        "error",
        ["field 'error.code' must be a string or null, got int"],
    ),
    (
        b'{"type": "rate_limits.updated", "rate_limits": {}}',
        "rate_limits.updated",
        ["field 'rate_limits' must be an array of rate limit objects, got object"],
    ),
    (
        b'{"type": "rate_limits.updated", "rate_limits": [{"name": "requests", "limit": 1, '
        b'"remaining": 1, "reset_seconds": 1}, {"name": "tokens", "limit": false, "remaining": 1, '
        b'"reset_seconds": 1}]}',
        "rate_limits.updated",
        ["field 'rate_limits[1].limit' must be an integer, got bool"],
    ),
    (
        b'{"type": "rate_limits.updated", "rate_limits": [{"name": "requests", "limit": 1, '
        b'"remaining": 1, "reset_seconds": "1"}]}',
        "rate_limits.updated",
        ["field 'rate_limits[0].reset_seconds' must be a number, got string"],
    ),
    (
        b'{"type": "input_audio_buffer.speech_started", "item_id": "i", "audio_start_ms": 1e3}',
        "input_audio_buffer.speech_started",
        ["field 'audio_start_ms' must be an integer, got float"],
    ),
    (
        b'{"type": "session.created", "session": null}',
        "session.created",
        ["field 'session' must be an object, got null"],
    ),
    (b'{"type": "x", "event_id": 1}', "x", ["field 'event_id' must be a string or null"]),
    (b'{"type": "x", "n": 1e400}', None, ["not valid json"]),
]


@pytest.mark.parametrize(("frame", "event_type", "words"), BAD_SERVER_FRAMES)
def test_bad_server_frame_is_a_protocol_error_value(
    frame: str | bytes, event_type: str | None, words: list[str]
) -> None:
    error = decode_server_event(frame)
    assert isinstance(error, ProtocolError)
    assert error.event_type == event_type
    assert error.message == error.message.lower()
    for word in words:
        assert word in error.message


def test_frames_above_the_limit_are_refused_and_at_the_limit_accepted() -> None:
    head, tail = b'{"type": "x", "pad": "', b'"}'
    at_limit = head + b"a" * (MAX_FRAME_BYTES - len(head) - len(tail)) + tail
    assert len(at_limit) == MAX_FRAME_BYTES
    assert isinstance(decode_server_event(at_limit), Unknown)
    over = at_limit[:-2] + b'a"}'
    for frame in (over, memoryview(over), over.decode()):
        error = decode_server_event(frame)
        assert isinstance(error, ProtocolError)
        assert f"frame of {MAX_FRAME_BYTES + 1} bytes is over the limit" in error.message
        assert error.event_type is None  # refused before parsing: the type was never read


# --------------------------------------------------------------------------- client events

VAD = {
    "type": "server_vad",
    "threshold": 0.6,
    "prefix_padding_ms": 200,
    "silence_duration_ms": 400,
    "create_response": False,
    "interrupt_response": True,
}
WEATHER = Tool(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
WEATHER_WIRE = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PCM_FORMAT = {"type": "audio/pcm", "rate": 24000}


def _ga_session(turn_detection: Any, transcription: dict[str, Any] | None) -> dict[str, Any]:
    audio_in: dict[str, Any] = {"format": PCM_FORMAT, "turn_detection": turn_detection}
    if transcription is not None:
        audio_in["transcription"] = transcription
    return {
        "type": "realtime",
        "instructions": "Be brief.",
        "output_modalities": ["audio"],
        "audio": {"input": audio_in, "output": {"format": PCM_FORMAT, "voice": "marin"}},
        "tools": [WEATHER_WIRE],
        "tool_choice": "auto",
    }


def _beta_session(turn_detection: Any, transcription: dict[str, Any] | None) -> dict[str, Any]:
    session = {
        "modalities": ["audio", "text"],
        "instructions": "Be brief.",
        "voice": "marin",
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "turn_detection": turn_detection,
        "tools": [WEATHER_WIRE],
        "tool_choice": "auto",
    }
    if transcription is not None:
        session["input_audio_transcription"] = transcription
    return session


def _config(turn_detection: Any, transcription_model: str | None) -> SessionConfig:
    return SessionConfig(
        instructions="Be brief.",
        voice="marin",
        turn_detection=turn_detection,
        transcription_model=transcription_model,
        tools=(WEATHER,),
    )


@dataclass(frozen=True)
class ClientCase:
    """A client event and its whole wire object in GA and in beta."""

    event: ClientEvent
    ga: dict[str, Any]
    beta: dict[str, Any]


def _both(event: ClientEvent, frame: dict[str, Any]) -> ClientCase:
    return ClientCase(event, frame, frame)


def _session_case(event_id: str | None, turn: Any, wire_turn: Any, model: str | None) -> ClientCase:
    transcription = None if model is None else {"model": model}
    head = {"type": "session.update"} | ({} if event_id is None else {"event_id": event_id})
    return ClientCase(
        SessionUpdate(event_id=event_id, session=_config(turn, model)),
        {**head, "session": _ga_session(wire_turn, transcription)},
        {**head, "session": _beta_session(wire_turn, transcription)},
    )


CLIENT_CASES = [
    _session_case(
        "c1",
        ServerVad(
            threshold=0.6, prefix_padding_ms=200, silence_duration_ms=400, create_response=False
        ),
        VAD,
        "gpt-4o-transcribe",
    ),
    _session_case(None, None, None, None),
    _session_case(
        "c2",
        SemanticVad(eagerness="low"),
        {"type": "semantic_vad", "eagerness": "low"},
        "whisper-1",
    ),
    _both(
        InputAudioAppend(event_id="c3", audio=PCM),
        {"type": "input_audio_buffer.append", "event_id": "c3", "audio": PCM_B64},
    ),
    _both(InputAudioAppend(audio=b""), {"type": "input_audio_buffer.append", "audio": ""}),
    _both(InputAudioCommit(event_id="c4"), {"type": "input_audio_buffer.commit", "event_id": "c4"}),
    _both(InputAudioClear(), {"type": "input_audio_buffer.clear"}),
    _both(
        UserText(event_id="c5", text="What's the weather?"),
        {
            "type": "conversation.item.create",
            "event_id": "c5",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What's the weather?"}],
            },
        },
    ),
    _both(
        FunctionCallOutput(event_id="c6", call_id=CALL, output='{"temp_c": 4}'),
        {
            "type": "conversation.item.create",
            "event_id": "c6",
            "item": {"type": "function_call_output", "call_id": CALL, "output": '{"temp_c": 4}'},
        },
    ),
    _both(ResponseCreate(), {"type": "response.create"}),
    _both(
        ResponseCreate(event_id="c7", response={"instructions": "Say bye."}),
        {"type": "response.create", "event_id": "c7", "response": {"instructions": "Say bye."}},
    ),
    ClientCase(
        OutOfBandResponse(event_id="c10", instructions="Say it verbatim.", text="Door open",
                          metadata={"pivox": "announcement", "id": "1"}),
        *[{
            "type": "response.create", "event_id": "c10", "response": {
                "conversation": "none", "instructions": "Say it verbatim.",
                "input": [{"type": "message", "role": "user",
                           "content": [{"type": "input_text", "text": "Door open"}]}],
                "metadata": {"pivox": "announcement", "id": "1"}, **modalities,
            },
        } for modalities in ({"output_modalities": ["audio"]},
                             {"modalities": ["audio", "text"]})],
    ),
    _both(ResponseCancel(), {"type": "response.cancel"}),
    _both(
        ResponseCancel(event_id="c8", response_id=RESP),
        {"type": "response.cancel", "event_id": "c8", "response_id": RESP},
    ),
    _both(
        ItemTruncate(event_id="c9", item_id=ITEM, content_index=0, audio_end_ms=1500),
        {
            "type": "conversation.item.truncate",
            "event_id": "c9",
            "item_id": ITEM,
            "content_index": 0,
            "audio_end_ms": 1500,
        },
    ),
]


def _cid(case: ClientCase) -> str:
    return f"{type(case.event).__name__}-{case.ga.get('event_id')}"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", CLIENT_CASES, ids=_cid)
def test_client_event_encodes_to_its_frame(case: ClientCase, dialect: str) -> None:
    encoded = encode_client_event(case.event, dialect)  # type: ignore[arg-type]
    assert orjson.loads(encoded) == (case.ga if dialect == "ga" else case.beta)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", CLIENT_CASES, ids=_cid)
def test_client_frame_decodes_back_equal(case: ClientCase, dialect: str) -> None:
    frame = case.ga if dialect == "ga" else case.beta
    assert decode_client_event(orjson.dumps(frame)) == case.event


def test_every_client_event_is_covered_and_documented() -> None:
    assert {type(c.event) for c in CLIENT_CASES} == set(typing.get_args(ClientEvent))
    doc = codec.__doc__ or ""
    for case in CLIENT_CASES:
        assert case.ga["type"] in doc and type(case.event).__name__ in doc


@pytest.mark.parametrize(
    "session",
    [{"type": "realtime"}, {"type": "realtime", "audio": None}, {}],
    ids=["ga-minimal", "ga-null-audio", "beta-empty"],
)
def test_minimal_session_update_takes_the_defaults(session: dict[str, Any]) -> None:
    frame = {"type": "session.update", "session": session}
    assert decode_client_event(orjson.dumps(frame)) == SessionUpdate(session=SessionConfig())


def test_null_transcription_means_none() -> None:
    frame = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"transcription": None}}},
    }
    event = decode_client_event(orjson.dumps(frame))
    assert isinstance(event, SessionUpdate) and event.session.transcription_model is None


def _update(session: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": "session.update", "session": session})


def _ga_turn(turn: Any) -> bytes:
    return _update({"type": "realtime", "audio": {"input": {"turn_detection": turn}}})


BAD_CLIENT_FRAMES = [
    (
        _ga_turn({"type": "server_vad", "threshold": 1.5}),
        "field 'session.audio.input.turn_detection.threshold' must be a number between 0 and 1, "
        "got 1.5",
    ),
    (
        _ga_turn({"type": "server_vad", "threshold": "high"}),
        "field 'session.audio.input.turn_detection.threshold' must be a number between 0 and 1, "
        "got string",
    ),
    (
        _ga_turn({"type": "server_vad", "silence_duration_ms": -1}),
        "field 'session.audio.input.turn_detection.silence_duration_ms' must be a non-negative "
        "integer, got -1",
    ),
    (
        _ga_turn({"type": "server_vad", "create_response": 1}),
        "field 'session.audio.input.turn_detection.create_response' must be a boolean, got int",
    ),
    (
        _ga_turn({"type": "semantic_vad", "eagerness": "eager"}),
        "field 'session.audio.input.turn_detection.eagerness' must be one of 'low', 'medium', "
        "'high', 'auto', got 'eager'",
    ),
    (
        _ga_turn({"threshold": 0.5}),
        "field 'session.audio.input.turn_detection.type' is missing, expected one of "
        "'server_vad', 'semantic_vad'",
    ),
    (
        _ga_turn("server_vad"),
        "field 'session.audio.input.turn_detection' must be an object or null, got string",
    ),
    (
        _update({"turn_detection": {"type": "vad"}}),
        "field 'session.turn_detection.type' must be one of 'server_vad', 'semantic_vad', "
        "got 'vad'",
    ),
    (
        _update({"type": "transcription"}),
        "field 'session.type' must be 'realtime', got 'transcription'",
    ),
    (
        _update({"type": "realtime", "turn_detection": None}),
        "field 'session.turn_detection' belongs to the other session shape, expected the ga shape",
    ),
    (
        _update({"audio": {}}),
        "field 'session.audio' belongs to the other session shape, expected the beta shape",
    ),
    (
        _update({"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}}}),
        "field 'session.audio.input.format.type' must be 'audio/pcm', got 'audio/pcmu'",
    ),
    (
        _update(
            {
                "type": "realtime",
                "audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}},
            }
        ),
        "field 'session.audio.output.format.rate' must be 24000, got 16000",
    ),
    (
        _update({"input_audio_format": "g711_ulaw"}),
        "field 'session.input_audio_format' must be 'pcm16', got 'g711_ulaw'",
    ),
    (
        _update({"modalities": ["audio", "video"]}),
        "field 'session.modalities[1]' must be one of 'audio', 'text', got 'video'",
    ),
    (
        _update({"type": "realtime", "audio": {"output": {"voice": {"id": "v1"}}}}),
        "field 'session.audio.output.voice' must be a string, got object",
    ),
    (
        _update({"type": "realtime", "audio": {"input": []}}),
        "field 'session.audio.input' must be an object, got array",
    ),
    (
        _update({"type": "realtime", "audio": {"input": {"transcription": {"language": "en"}}}}),
        "field 'session.audio.input.transcription.model' is missing, expected a string",
    ),
    (
        _update({"tools": [{"type": "function", "description": "no name"}]}),
        "field 'session.tools[0].name' is missing, expected a string",
    ),
    (
        _update({"tools": [{"type": "mcp", "name": "x"}]}),
        "field 'session.tools[0].type' must be 'function', got 'mcp'",
    ),
    (_update({"instructions": None}), "field 'session.instructions' must be a string, got null"),
    (orjson.dumps({"type": "session.update"}), "field 'session' is missing, expected an object"),
    (
        orjson.dumps({"type": "input_audio_buffer.append", "audio": "AAAA"}),
        "field 'audio' must be pcm16 audio of whole 2-byte samples, got 3 bytes",
    ),
    (
        orjson.dumps(
            {
                "type": "conversation.item.truncate",
                "item_id": "i",
                "content_index": 0,
                "audio_end_ms": -5,
            }
        ),
        "field 'audio_end_ms' must be a non-negative integer, got -5",
    ),
    (
        orjson.dumps({"type": "conversation.item.truncate", "item_id": "i", "audio_end_ms": 5}),
        "field 'content_index' is missing, expected an integer",
    ),
    (
        orjson.dumps({"type": "conversation.item.create", "item": {"type": "function_call"}}),
        "field 'item.type' must be one of 'message', 'function_call_output', got 'function_call'",
    ),
    (
        orjson.dumps(
            {"type": "conversation.item.create", "item": {"type": "message", "role": "assistant"}}
        ),
        "field 'item.role' must be 'user', got 'assistant'",
    ),
    (
        orjson.dumps(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "content": [
                        {"type": "input_text", "text": "a"},
                        {"type": "input_text", "text": "b"},
                    ],
                },
            }
        ),
        "field 'item.content' must be an array of one input_text part, got 2",
    ),
    (
        orjson.dumps(
            {
                "type": "conversation.item.create",
                "item": {"type": "message", "content": [{"type": "input_audio", "audio": ""}]},
            }
        ),
        "field 'item.content[0].type' must be 'input_text', got 'input_audio'",
    ),
    (
        orjson.dumps(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": "c"},
            }
        ),
        "field 'item.output' is missing, expected a string",
    ),
    (
        orjson.dumps({"type": "response.create", "response": []}),
        "field 'response' must be an object or null, got array",
    ),
    (
        orjson.dumps({"type": "output_audio_buffer.clear"}),
        "unknown client event type, expected one of conversation.item.create, ",
    ),
]


@pytest.mark.parametrize(("frame", "message"), BAD_CLIENT_FRAMES)
def test_bad_client_frame_names_the_bad_field(frame: bytes, message: str) -> None:
    error = decode_client_event(frame)
    assert isinstance(error, ProtocolError)
    assert error.event_type == orjson.loads(frame)["type"]
    assert message in error.message


def test_client_decode_shares_the_frame_checks() -> None:
    error = decode_client_event(b"   ")
    assert error == ProtocolError("frame is empty or whitespace only, expected a json object")
