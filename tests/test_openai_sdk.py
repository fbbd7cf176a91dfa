"""pivox.protocol.openai against the official `openai` SDK's own Realtime models.

Client frames pivox encodes must validate (strictly, with no key the SDK does not know) as
the SDK's client events; server frames built from the SDK's models must decode with every
field carried over.
"""

from __future__ import annotations

import base64
from typing import Any

import openai.types.beta.realtime as beta
import openai.types.realtime as ga
import orjson
import pydantic
import pytest
from pydantic import TypeAdapter

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
from pivox.protocol.openai import decode_server_event, encode_client_event
from tests.sdk_models import unknown_keys

GA_CLIENT = TypeAdapter(ga.RealtimeClientEvent)
BETA_CLIENT = TypeAdapter(beta.RealtimeClientEvent)


def _validate(adapter: TypeAdapter[Any], frame: str | bytes) -> pydantic.BaseModel:
    """`frame` as the SDK's model, strictly typed and with no key the SDK does not know."""
    model = adapter.validate_python(orjson.loads(frame), strict=True)
    assert unknown_keys(model) == [], "keys unknown to the SDK"
    return model  # type: ignore[no-any-return]


PCM = bytes(range(256)) * 8
TOOL = Tool(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
CONFIGS = [
    SessionConfig(),
    SessionConfig(
        instructions="Be brief.",
        voice="marin",
        turn_detection=ServerVad(threshold=0.7, create_response=False),
        transcription_model="gpt-4o-transcribe",
        tools=(TOOL,),
        tool_choice="required",
    ),
    SessionConfig(turn_detection=None, transcription_model="whisper-1"),
    SessionConfig(turn_detection=SemanticVad(eagerness="high"), tools=(Tool(name="now"),)),
]
CLIENT_EVENTS: list[ClientEvent] = [
    *(SessionUpdate(event_id=f"c{i}", session=c) for i, c in enumerate(CONFIGS)),
    InputAudioAppend(event_id="c5", audio=PCM),
    InputAudioCommit(),
    InputAudioClear(event_id="c6"),
    UserText(text="What's the weather in Oslo?"),
    FunctionCallOutput(event_id="c7", call_id=CallId("call_1"), output='{"temp_c": 4}'),
    ResponseCreate(),
    ResponseCreate(response={"instructions": "Say goodbye.", "conversation": "none"}),
    OutOfBandResponse(event_id="c9", instructions="Say it verbatim.", text="Door open",
                      metadata={"pivox": "announcement"}),
    ResponseCancel(),
    ResponseCancel(response_id=ResponseId("resp_1")),
    ItemTruncate(event_id="c8", item_id=ItemId("item_1"), content_index=0, audio_end_ms=1234),
]


def _name(event: ClientEvent) -> str:
    return f"{type(event).__name__}-{event.event_id}"


@pytest.mark.parametrize("event", CLIENT_EVENTS, ids=_name)
def test_every_ga_client_frame_validates_as_the_sdk_client_event(event: ClientEvent) -> None:
    frame = encode_client_event(event, "ga")
    model = _validate(GA_CLIENT, frame)
    assert model.type == orjson.loads(frame)["type"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("event", CLIENT_EVENTS, ids=_name)
def test_every_beta_client_frame_validates_as_the_sdk_beta_client_event(event: ClientEvent) -> None:
    frame = encode_client_event(event, "beta")
    model = _validate(BETA_CLIENT, frame)
    assert model.type == orjson.loads(frame)["type"]  # type: ignore[attr-defined]


def test_ga_session_values_reach_the_sdk_model() -> None:
    model = _validate(GA_CLIENT, encode_client_event(SessionUpdate(session=CONFIGS[1]), "ga"))
    assert isinstance(model, ga.SessionUpdateEvent)
    session = model.session
    assert isinstance(session, ga.RealtimeSessionCreateRequest)
    assert session.audio and session.audio.input and session.audio.output
    vad = session.audio.input.turn_detection
    assert vad is not None and vad.type == "server_vad"
    assert (vad.threshold, vad.create_response) == (0.7, False)
    assert session.audio.input.transcription is not None
    assert session.audio.input.transcription.model == "gpt-4o-transcribe"
    assert session.audio.output.voice == "marin"
    assert session.tools and session.tools[0].name == "get_weather"  # type: ignore[union-attr]
    assert session.tool_choice == "required"


def test_beta_session_values_reach_the_sdk_model() -> None:
    event = SessionUpdate(session=CONFIGS[2])
    model = _validate(TypeAdapter(beta.SessionUpdateEvent), encode_client_event(event, "beta"))
    assert isinstance(model, beta.SessionUpdateEvent)
    assert model.session.turn_detection is None
    assert model.session.input_audio_transcription is not None
    assert model.session.input_audio_transcription.model == "whisper-1"
    assert model.session.input_audio_format == "pcm16"


WRONG_FRAMES = [
    # the beta session shape is not the GA one (no session.type)
    (GA_CLIENT, encode_client_event(SessionUpdate(session=SessionConfig()), "beta")),
    # the GA session shape is not the beta one (session.type, audio unknown to beta)
    (BETA_CLIENT, encode_client_event(SessionUpdate(session=SessionConfig()), "ga")),
    (GA_CLIENT, b'{"type": "response.cancel", "respons_id": "resp_1"}'),
    (GA_CLIENT, b'{"type": "conversation.item.truncate", "item_id": "i", "content_index": 0}'),
    (
        GA_CLIENT,
        b'{"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, '
        b'"audio_end_ms": "10"}',
    ),
    (GA_CLIENT, b'{"type": "input_audio_buffer.append", "audio": 5}'),
    (
        GA_CLIENT,
        b'{"type": "conversation.item.create", "item": {"type": "message", '
        b'"role": "user", "content": [{"type": "text", "text": "hi"}]}}',
    ),
    (
        GA_CLIENT,
        b'{"type": "session.update", "session": {"type": "realtime", "audio": {"input": '
        b'{"turn_detection": {"type": "server_vad", "eagerness": "low"}}}}}',
    ),
]


@pytest.mark.parametrize(("adapter", "frame"), WRONG_FRAMES)
def test_the_sdk_check_bites_on_a_wrong_shape(adapter: TypeAdapter[Any], frame: bytes) -> None:
    with pytest.raises((pydantic.ValidationError, AssertionError)):
        _validate(adapter, frame)


# --------------------------------------------------------------------------- server events

B64 = base64.b64encode(PCM).decode()
IDS: dict[str, Any] = {
    "response_id": "resp_1",
    "item_id": "item_1",
    "output_index": 0,
    "content_index": 0,
}
ITEM = ga.RealtimeConversationItemAssistantMessage(
    id="item_1",
    object="realtime.item",
    type="message",
    role="assistant",
    status="completed",
    content=[{"type": "output_audio", "transcript": "It is 4 degrees."}],  # type: ignore[list-item]
)
CALL = ga.RealtimeConversationItemFunctionCall(
    id="item_2", type="function_call", call_id="call_1", name="get_weather", arguments="{}"
)
RESPONSE = ga.RealtimeResponse(
    id="resp_1",
    object="realtime.response",
    status="completed",
    output=[ITEM],
    output_modalities=["audio"],
    usage=ga.RealtimeResponseUsage(total_tokens=40, input_tokens=30, output_tokens=10),
)
SESSION = ga.RealtimeSessionCreateRequest(
    type="realtime", instructions="Be brief.", model="gpt-realtime"
)
BETA_ITEM = beta.ConversationItem(
    id="item_1",
    object="realtime.item",
    type="message",
    role="assistant",
    status="completed",
    content=[{"type": "audio", "transcript": "Hi"}],  # type: ignore[list-item]
)


def _json(model: pydantic.BaseModel) -> dict[str, Any]:
    return orjson.loads(model.model_dump_json())  # type: ignore[no-any-return]


SDK_SERVER_CASES: list[tuple[pydantic.BaseModel, ServerEvent]] = [
    (
        ga.SessionCreatedEvent(type="session.created", event_id="e1", session=SESSION),
        SessionCreated(event_id="e1", session=_json(SESSION)),
    ),
    (
        ga.SessionUpdatedEvent(type="session.updated", event_id="e2", session=SESSION),
        SessionUpdated(event_id="e2", session=_json(SESSION)),
    ),
    (
        ga.RealtimeErrorEvent(
            type="error",
            event_id="e3",
            error=ga.RealtimeError(
                type="invalid_request_error",
                code="invalid_value",
                message="Invalid value: 'x'.",
                param="session.voice",
                event_id="c1",
            ),
        ),
        Error(
            event_id="e3",
            error=ErrorInfo(
                type="invalid_request_error",
                code="invalid_value",
                message="Invalid value: 'x'.",
                param="session.voice",
                event_id="c1",
            ),
        ),
    ),
    (
        ga.RealtimeErrorEvent(
            type="error", event_id="e4", error=ga.RealtimeError(type="server_error", message="m")
        ),
        Error(event_id="e4", error=ErrorInfo(type="server_error", message="m")),
    ),
    (
        ga.InputAudioBufferSpeechStartedEvent(
            type="input_audio_buffer.speech_started",
            event_id="e5",
            audio_start_ms=320,
            item_id="item_1",
        ),
        SpeechStarted(event_id="e5", audio_start_ms=320, item_id=ItemId("item_1")),
    ),
    (
        ga.InputAudioBufferSpeechStoppedEvent(
            type="input_audio_buffer.speech_stopped",
            event_id="e6",
            audio_end_ms=2200,
            item_id="item_1",
        ),
        SpeechStopped(event_id="e6", audio_end_ms=2200, item_id=ItemId("item_1")),
    ),
    (
        ga.InputAudioBufferCommittedEvent(
            type="input_audio_buffer.committed",
            event_id="e7",
            item_id="item_1",
            previous_item_id="item_0",
        ),
        AudioCommitted(event_id="e7", item_id=ItemId("item_1"), previous_item_id=ItemId("item_0")),
    ),
    (
        ga.InputAudioBufferClearedEvent(type="input_audio_buffer.cleared", event_id="e8"),
        AudioCleared(event_id="e8"),
    ),
    (
        ga.ConversationItemAdded(
            type="conversation.item.added", event_id="e9", item=ITEM, previous_item_id="item_0"
        ),
        ItemCreated(event_id="e9", item=_json(ITEM), previous_item_id=ItemId("item_0")),
    ),
    (
        ga.ConversationItemDone(type="conversation.item.done", event_id="e10", item=ITEM),
        ItemCreated(event_id="e10", item=_json(ITEM), done=True),
    ),
    (
        ga.ConversationItemCreatedEvent(
            type="conversation.item.created", event_id="e11", item=ITEM
        ),
        ItemCreated(event_id="e11", item=_json(ITEM)),
    ),
    (
        ga.ResponseCreatedEvent(
            type="response.created",
            event_id="e12",
            response=ga.RealtimeResponse(id="resp_1", status="in_progress"),
        ),
        ResponseCreated(
            event_id="e12",
            response_id=ResponseId("resp_1"),
            response=_json(ga.RealtimeResponse(id="resp_1", status="in_progress")),
        ),
    ),
    (
        ga.ResponseDoneEvent(type="response.done", event_id="e13", response=RESPONSE),
        ResponseDone(
            event_id="e13",
            response_id=ResponseId("resp_1"),
            status="completed",
            response=_json(RESPONSE),
        ),
    ),
    (
        ga.ResponseOutputItemAddedEvent(
            type="response.output_item.added",
            event_id="e14",
            response_id="resp_1",
            output_index=1,
            item=CALL,
        ),
        OutputItemAdded(
            event_id="e14", response_id=ResponseId("resp_1"), output_index=1, item=_json(CALL)
        ),
    ),
    (
        ga.ResponseOutputItemDoneEvent(
            type="response.output_item.done",
            event_id="e15",
            response_id="resp_1",
            output_index=0,
            item=ITEM,
        ),
        OutputItemDone(
            event_id="e15", response_id=ResponseId("resp_1"), output_index=0, item=_json(ITEM)
        ),
    ),
    (
        ga.ResponseAudioDeltaEvent(
            type="response.output_audio.delta", event_id="e16", delta=B64, **IDS
        ),
        AudioDelta(event_id="e16", audio=PCM, **IDS),
    ),
    (
        ga.ResponseAudioDoneEvent(type="response.output_audio.done", event_id="e17", **IDS),
        AudioDone(event_id="e17", **IDS),
    ),
    (
        ga.ResponseTextDeltaEvent(
            type="response.output_text.delta", event_id="e18", delta="It", **IDS
        ),
        TextDelta(event_id="e18", delta="It", **IDS),
    ),
    (
        ga.ResponseTextDoneEvent(
            type="response.output_text.done", event_id="e19", text="It is.", **IDS
        ),
        TextDone(event_id="e19", text="It is.", **IDS),
    ),
    (
        ga.ResponseAudioTranscriptDeltaEvent(
            type="response.output_audio_transcript.delta", event_id="e20", delta="It", **IDS
        ),
        TranscriptDelta(event_id="e20", delta="It", **IDS),
    ),
    (
        ga.ResponseAudioTranscriptDoneEvent(
            type="response.output_audio_transcript.done", event_id="e21", transcript="It is.", **IDS
        ),
        TranscriptDone(event_id="e21", transcript="It is.", **IDS),
    ),
    (
        ga.ResponseFunctionCallArgumentsDeltaEvent(
            type="response.function_call_arguments.delta",
            event_id="e22",
            response_id="resp_1",
            item_id="item_2",
            output_index=1,
            call_id="call_1",
            delta='{"ci',
        ),
        FunctionCallDelta(
            event_id="e22",
            response_id=ResponseId("resp_1"),
            item_id=ItemId("item_2"),
            output_index=1,
            call_id=CallId("call_1"),
            delta='{"ci',
        ),
    ),
    (
        ga.ResponseFunctionCallArgumentsDoneEvent(
            type="response.function_call_arguments.done",
            event_id="e23",
            response_id="resp_1",
            item_id="item_2",
            output_index=1,
            call_id="call_1",
            name="get_weather",
            arguments='{"city": "Oslo"}',
        ),
        FunctionCallDone(
            event_id="e23",
            response_id=ResponseId("resp_1"),
            item_id=ItemId("item_2"),
            output_index=1,
            call_id=CallId("call_1"),
            name="get_weather",
            arguments='{"city": "Oslo"}',
        ),
    ),
    (
        ga.RateLimitsUpdatedEvent(
            type="rate_limits.updated",
            event_id="e24",
            rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5},
            ],  # type: ignore[list-item]
        ),
        RateLimitsUpdated(
            event_id="e24",
            rate_limits=(
                RateLimit(name="requests", limit=5000, remaining=4999, reset_seconds=0.012),
                RateLimit(name="tokens", limit=40000, remaining=39000, reset_seconds=1.5),
            ),
        ),
    ),
    (
        ga.ConversationItemInputAudioTranscriptionDeltaEvent(
            type="conversation.item.input_audio_transcription.delta",
            event_id="e25",
            item_id="item_1",
            content_index=0,
            delta="What",
        ),
        InputTranscriptDelta(
            event_id="e25", item_id=ItemId("item_1"), content_index=0, delta="What"
        ),
    ),
    (
        ga.ConversationItemInputAudioTranscriptionCompletedEvent(
            type="conversation.item.input_audio_transcription.completed",
            event_id="e26",
            item_id="item_1",
            content_index=0,
            transcript="What is it?",
            usage={"type": "duration", "seconds": 1.2},  # type: ignore[arg-type]
        ),
        InputTranscriptCompleted(
            event_id="e26", item_id=ItemId("item_1"), content_index=0, transcript="What is it?"
        ),
    ),
    # beta twins, from the SDK's beta models
    (
        beta.ResponseAudioDeltaEvent(type="response.audio.delta", event_id="b1", delta=B64, **IDS),
        AudioDelta(event_id="b1", audio=PCM, **IDS),
    ),
    (
        beta.ResponseAudioDoneEvent(type="response.audio.done", event_id="b2", **IDS),
        AudioDone(event_id="b2", **IDS),
    ),
    (
        beta.ResponseTextDeltaEvent(type="response.text.delta", event_id="b3", delta="I", **IDS),
        TextDelta(event_id="b3", delta="I", **IDS),
    ),
    (
        beta.ResponseTextDoneEvent(type="response.text.done", event_id="b4", text="I.", **IDS),
        TextDone(event_id="b4", text="I.", **IDS),
    ),
    (
        beta.ResponseAudioTranscriptDeltaEvent(
            type="response.audio_transcript.delta", event_id="b5", delta="I", **IDS
        ),
        TranscriptDelta(event_id="b5", delta="I", **IDS),
    ),
    (
        beta.ResponseAudioTranscriptDoneEvent(
            type="response.audio_transcript.done", event_id="b6", transcript="I.", **IDS
        ),
        TranscriptDone(event_id="b6", transcript="I.", **IDS),
    ),
    (
        beta.ConversationItemCreatedEvent(
            type="conversation.item.created", event_id="b7", item=BETA_ITEM, previous_item_id=None
        ),
        ItemCreated(event_id="b7", item=_json(BETA_ITEM)),
    ),
    (
        beta.ResponseDoneEvent(
            type="response.done",
            event_id="b8",
            response=beta.RealtimeResponse(id="resp_9", status="cancelled"),
        ),
        ResponseDone(
            event_id="b8",
            response_id=ResponseId("resp_9"),
            status="cancelled",
            response=_json(beta.RealtimeResponse(id="resp_9", status="cancelled")),
        ),
    ),
]


def _sdk_id(case: tuple[pydantic.BaseModel, ServerEvent]) -> str:
    return f"{type(case[0]).__module__.split('.')[2]}-{type(case[0]).__name__}"


@pytest.mark.parametrize("case", SDK_SERVER_CASES, ids=_sdk_id)
def test_server_event_built_by_the_sdk_decodes_with_every_field(
    case: tuple[pydantic.BaseModel, ServerEvent],
) -> None:
    model, expected = case
    decoded = decode_server_event(model.model_dump_json())
    assert not isinstance(decoded, ProtocolError), decoded
    assert decoded == expected


def test_every_ga_variant_is_built_from_the_sdk() -> None:
    ga_cases = [e for m, e in SDK_SERVER_CASES if type(m).__module__.startswith("openai.types.re")]
    assert len({type(e) for e in ga_cases}) == 23  # every ServerEvent variant but Unknown


def test_sdk_server_event_outside_the_model_is_unknown_with_payload() -> None:
    frame = ga.ConversationItemTruncatedEvent(
        type="conversation.item.truncated",
        event_id="e",
        item_id="item_1",
        content_index=0,
        audio_end_ms=900,
    )
    decoded = decode_server_event(frame.model_dump_json())
    assert decoded == Unknown(
        event_id="e", type="conversation.item.truncated", payload=_json(frame)
    )
