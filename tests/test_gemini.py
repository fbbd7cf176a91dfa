"""pivox.protocol.gemini: the Gemini Live codec, both ways, against tables and the SDK."""

from __future__ import annotations

import typing
from typing import Any

import orjson
import pybase64
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivox.core.errors import ProtocolError
from pivox.core.events import (
    AudioDelta,
    AudioDone,
    CallId,
    FunctionCallDone,
    FunctionCallOutput,
    GoAway,
    InputAudioAppend,
    InputAudioClear,
    InputAudioCommit,
    InputTranscriptCompleted,
    InputTranscriptDelta,
    ItemId,
    ItemTruncate,
    ResponseCancel,
    ResponseCreate,
    ResponseCreated,
    ResponseDone,
    ResponseId,
    ServerEvent,
    ServerVad,
    SessionConfig,
    SessionCreated,
    SessionUpdate,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    Tool,
    TranscriptDelta,
    TranscriptDone,
    Unknown,
    UserText,
)
from pivox.protocol import gemini
from pivox.protocol.gemini import (
    ActivityEnd,
    ActivityStart,
    AudioIn,
    ClientText,
    GeminiCodec,
    LinkState,
    Setup,
    ToolResponse,
    decode_client_message,
)

PCM = bytes(range(256)) * 4


def audio(pcm: bytes = PCM, mime: str = gemini.OUTPUT_MIME) -> dict[str, Any]:
    data = pybase64.b64encode(pcm).decode()
    return {"serverContent": {"modelTurn": {"parts": [{"inlineData": {
        "mimeType": mime, "data": data}}]}}}


def content(**fields: Any) -> dict[str, Any]:
    return {"serverContent": fields}


def decode(codec: GeminiCodec, message: dict[str, Any]) -> list[Any]:
    return codec.decode(orjson.dumps(message))


def kinds(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


# --------------------------------------------------------------------------- server → events


def test_a_spoken_turn_opens_streams_and_closes_one_response() -> None:
    codec = GeminiCodec(model="m", state=LinkState())
    assert decode(codec, {"setupComplete": {"sessionId": "s1"}}) == [
        SessionCreated(session={"id": "s1", "provider": "gemini"})]
    first = decode(codec, audio())
    assert kinds(first) == ["ResponseCreated", "AudioDelta"]
    rid, iid = first[1].response_id, first[1].item_id
    assert first[1] == AudioDelta(response_id=rid, item_id=iid, output_index=0,
                                  content_index=0, audio=PCM)
    assert decode(codec, audio(PCM[:4])) == [AudioDelta(
        response_id=rid, item_id=iid, output_index=0, content_index=0, audio=PCM[:4])]
    assert decode(codec, content(outputTranscription={"text": "Hel"})) == [TranscriptDelta(
        response_id=rid, item_id=iid, output_index=0, content_index=0, delta="Hel")]
    decode(codec, content(outputTranscription={"text": "lo"}))
    assert decode(codec, content(generationComplete=True)) == [AudioDone(
        response_id=rid, item_id=iid, output_index=0, content_index=0)]
    done = decode(codec, content(turnComplete=True))
    assert kinds(done) == ["TranscriptDone", "ResponseDone"]
    assert done[0].transcript == "Hello"
    assert (done[1].response_id, done[1].status) == (rid, "completed")
    again = decode(codec, audio())
    assert again[0].response_id != rid  # the next turn is a new response


def test_turn_complete_alone_gives_audio_done_once_and_an_empty_turn_a_response() -> None:
    codec = GeminiCodec(model="m")
    decode(codec, audio())
    assert kinds(decode(codec, content(turnComplete=True))) == ["AudioDone", "ResponseDone"]
    assert kinds(decode(codec, content(turnComplete=True))) == ["ResponseCreated", "ResponseDone"]


def test_interrupted_is_a_barge_in_then_the_cancelled_response_ends() -> None:
    codec = GeminiCodec(model="m")
    rid = decode(codec, audio())[0].response_id
    events = decode(codec, content(interrupted=True))
    assert kinds(events) == ["SpeechStarted", "ResponseDone"]
    assert (events[1].response_id, events[1].status) == (rid, "cancelled")
    # the next reply first ends the user's turn, so the device leaves USER_SPEAKING
    assert kinds(decode(codec, audio())) == ["SpeechStopped", "ResponseCreated", "AudioDelta"]


def test_voice_activity_maps_to_speech_started_and_stopped() -> None:
    codec = GeminiCodec(model="m")
    started = decode(codec, {"voiceActivity": {"voiceActivityType": "ACTIVITY_START"}})
    stopped = decode(codec, {"voiceActivity": {"voiceActivityType": "ACTIVITY_END"}})
    assert kinds(started) == ["SpeechStarted"] and kinds(stopped) == ["SpeechStopped"]
    assert started[0].item_id == stopped[0].item_id


def test_input_transcription_completes_when_finished_or_when_the_model_answers() -> None:
    codec = GeminiCodec(model="m")
    delta = decode(codec, content(inputTranscription={"text": "what time"}))
    assert kinds(delta) == ["InputTranscriptDelta"]
    item = delta[0].item_id
    assert decode(codec, content(inputTranscription={"text": " is it", "finished": True})) == [
        InputTranscriptDelta(item_id=item, content_index=0, delta=" is it"),
        InputTranscriptCompleted(item_id=item, content_index=0, transcript="what time is it"),
    ]
    decode(codec, content(inputTranscription={"text": "hi"}))
    answered = decode(codec, audio())
    assert kinds(answered) == ["InputTranscriptCompleted", "ResponseCreated", "AudioDelta"]


def test_tool_calls_end_the_response_and_the_reply_names_the_function() -> None:
    codec = GeminiCodec(model="m")
    events = decode(codec, {"toolCall": {"functionCalls": [
        {"id": "c1", "name": "get_time", "args": {}},
        {"id": "c2", "name": "set_volume", "args": {"level": 3}},
    ]}})
    assert kinds(events) == ["ResponseCreated", "FunctionCallDone", "FunctionCallDone",
                             "ResponseDone"]
    assert [(e.call_id, e.name, e.arguments, e.output_index) for e in events[1:3]] == [
        ("c1", "get_time", "{}", 0), ("c2", "set_volume", '{"level":3}', 1)]
    # a turnComplete for the tool-call turn adds no empty response
    assert decode(codec, content(turnComplete=True)) == [
        Unknown(type="serverContent", payload={"serverContent": {"turnComplete": True}})]
    (frame,) = codec.encode(FunctionCallOutput(call_id=CallId("c2"), output="ok"))
    assert orjson.loads(frame) == {"toolResponse": {"functionResponses": [
        {"id": "c2", "name": "set_volume", "response": {"output": "ok"}}]}}


def test_go_away_resumption_and_the_rest() -> None:
    state = LinkState()
    codec = GeminiCodec(model="m", state=state)
    assert decode(codec, {"goAway": {"timeLeft": "50s"}}) == [GoAway(time_left_ms=50000)]
    assert decode(codec, {"goAway": {"timeLeft": "0.25s"}}) == [GoAway(time_left_ms=250)]
    assert decode(codec, {"goAway": {}}) == [GoAway(time_left_ms=None)]
    update = {"sessionResumptionUpdate": {"newHandle": "h1", "resumable": True}}
    assert decode(codec, update) == [Unknown(type="sessionResumptionUpdate", payload=update)]
    assert state.handle == "h1"
    decode(codec, {"sessionResumptionUpdate": {"resumable": False}})
    assert state.handle == "h1"  # not resumable now: the last good handle stays
    for message in ({"toolCallCancellation": {"ids": ["c1"]}},
                    {"usageMetadata": {"totalTokenCount": 5}}, {"someFutureThing": {"x": 1}}):
        (event,) = decode(codec, message)
        assert event == Unknown(type=next(iter(message)), payload=message)


def test_text_and_other_parts() -> None:
    codec = GeminiCodec(model="m")
    events = decode(codec, {"serverContent": {"modelTurn": {"parts": [
        {"text": "thinking"}, {"executableCode": {"code": "1"}}]}}})
    assert kinds(events) == ["ResponseCreated", "TextDelta", "Unknown"]
    assert events[1].delta == "thinking"
    assert events[2].payload == {"executableCode": {"code": "1"}}


def test_ids_never_repeat_across_connections_sharing_a_state() -> None:
    state = LinkState()
    first = decode(GeminiCodec(model="m", state=state), audio())[0].response_id
    second = decode(GeminiCodec(model="m", state=state), audio())[0].response_id
    assert first != second


def test_the_docstring_names_every_message_kind_and_variant() -> None:
    doc = gemini.__doc__ or ""
    for name in ("setupComplete", "modelTurn", "inlineData", "outputTranscription",
                 "inputTranscription", "generationComplete", "turnComplete", "interrupted",
                 "toolCall", "toolCallCancellation", "goAway", "sessionResumptionUpdate",
                 "usageMetadata", "voiceActivity", "activityStart", "activityEnd",
                 "toolResponse", "clientContent", "realtimeInput.audio"):
        assert name in doc, name
    produced = {SessionCreated, AudioDelta, AudioDone, TextDelta, TranscriptDelta,
                TranscriptDone, InputTranscriptDelta, InputTranscriptCompleted, SpeechStarted,
                SpeechStopped, ResponseCreated, ResponseDone, FunctionCallDone, GoAway, Unknown}
    for cls in produced:
        assert cls.__name__ in doc, cls


# --------------------------------------------------------------------------- bad input

BAD: list[tuple[bytes, str]] = [
    (b"", "frame is empty or whitespace only, expected a json object"),
    (b"[1]", "frame must be a json object, got array"),
    (b'{"serverContent": 1}', "field 'serverContent' must be an object, got int"),
    (b'{"serverContent": {"turnComplete": "yes"}}',
     "field 'serverContent.turnComplete' must be a boolean, got string"),
    (orjson.dumps(audio(b"abc")), "field 'serverContent.modelTurn.parts[0].inlineData.data' "
     "must be pcm16 audio of whole 2-byte samples, got 3 bytes"),
    (orjson.dumps(audio(mime="audio/pcm;rate=16000")),
     "field 'serverContent.modelTurn.parts[0].inlineData.mimeType' must be "
     "'audio/pcm;rate=24000', got 'audio/pcm;rate=16000'"),
    (b'{"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": '
     b'"audio/pcm;rate=24000", "data": "no base64!"}}]}}}',
     "field 'serverContent.modelTurn.parts[0].inlineData.data' must be base64 text, got "
     "invalid base64"),
    (b'{"serverContent": {"modelTurn": {"parts": [7]}}}',
     "field 'serverContent.modelTurn.parts[0]' must be an object, got int"),
    (b'{"toolCall": {"functionCalls": [{"id": "c"}]}}',
     "field 'toolCall.functionCalls[0].name' is missing, expected a string"),
    (b'{"toolCall": {"functionCalls": [{"name": "f", "args": []}]}}',
     "field 'toolCall.functionCalls[0].args' must be an object, got array"),
    (b'{"goAway": {"timeLeft": "soon"}}',
     "field 'goAway.timeLeft' must be a duration such as \"50s\", got 'soon'"),
    (b'{"goAway": {"timeLeft": 5}}',
     "field 'goAway.timeLeft' must be a duration such as \"50s\", got int"),
    (b'{"voiceActivity": {"voiceActivityType": "LOUD"}}',
     "field 'voiceActivity.voiceActivityType' must be ACTIVITY_START or ACTIVITY_END, got 'LOUD'"),
    (b'{"sessionResumptionUpdate": {"newHandle": 1}}',
     "field 'sessionResumptionUpdate.newHandle' must be a string, got int"),
    (b"\xff", "frame is not valid utf-8"),
]


@pytest.mark.parametrize(("frame", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_a_bad_frame_is_a_protocol_error_and_changes_nothing(frame: bytes, message: str) -> None:
    codec = GeminiCodec(model="m")
    rid = decode(codec, audio())[0].response_id
    (error,) = codec.decode(frame)
    assert isinstance(error, ProtocolError)
    assert error.message.startswith(message), error.message
    # the response is still open and nothing else moved
    assert decode(codec, audio()) == [AudioDelta(response_id=rid, item_id=ItemId(
        decode(codec, audio())[0].item_id), output_index=0, content_index=0, audio=PCM)]


def test_a_frame_over_the_limit_is_refused() -> None:
    (error,) = GeminiCodec(model="m").decode(b" " * (gemini.MAX_FRAME_BYTES + 1))
    assert isinstance(error, ProtocolError) and "over the limit" in error.message


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)
KEYS = st.sampled_from(["setupComplete", "serverContent", "toolCall", "toolCallCancellation",
                        "goAway", "sessionResumptionUpdate", "usageMetadata", "voiceActivity"])
ACCEPTED = (ProtocolError, *typing.get_args(ServerEvent))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=3) | JSON)
def test_any_json_decodes_to_events_or_a_protocol_error(value: Any) -> None:
    events = GeminiCodec(model="m").decode(orjson.dumps(value))
    assert events and all(isinstance(e, ACCEPTED) for e in events)
    assert not (any(isinstance(e, ProtocolError) for e in events) and len(events) > 1)


# --------------------------------------------------------------------------- the turn invariant

SERVER_MESSAGES = st.sampled_from([
    audio(PCM[:8]), content(outputTranscription={"text": "a"}),
    content(inputTranscription={"text": "b"}), content(generationComplete=True),
    content(turnComplete=True), content(interrupted=True),
    {"toolCall": {"functionCalls": [{"id": "c", "name": "f", "args": {}}]}},
    {"voiceActivity": {"voiceActivityType": "ACTIVITY_START"}},
    {"goAway": {"timeLeft": "1s"}}, {"serverContent": {"modelTurn": {"parts": [{"text": "t"}]}}},
])


@settings(max_examples=200, deadline=None)
@given(st.lists(SERVER_MESSAGES, max_size=30))
def test_every_response_opens_once_closes_once_and_holds_its_output(messages: list[Any]) -> None:
    codec = GeminiCodec(model="m")
    open_id: str | None = None
    seen: set[str] = set()
    pending_audio = False  # audio sent since the last AudioDone
    for message in messages:
        for event in decode(codec, message):
            assert not isinstance(event, ProtocolError)
            if isinstance(event, ResponseCreated):
                assert open_id is None and event.response_id not in seen
                open_id = event.response_id
                seen.add(open_id)
            elif isinstance(event, ResponseDone):
                assert event.response_id == open_id
                open_id, pending_audio = None, False
            elif isinstance(event, AudioDone):
                assert event.response_id == open_id and pending_audio
                pending_audio = False
            elif isinstance(event, AudioDelta | TranscriptDelta | TextDelta | FunctionCallDone):
                assert event.response_id == open_id
                pending_audio = pending_audio or isinstance(event, AudioDelta)


# --------------------------------------------------------------------------- client side

VOICES = st.sampled_from(["Puck", "Kore", "alloy"])
TOOLS = st.lists(st.builds(
    Tool, name=st.from_regex(r"[a-z_]{1,12}", fullmatch=True), description=st.text(max_size=20),
    parameters=st.sampled_from([{}, {"type": "object", "properties": {"x": {"type": "string"}}}]),
), max_size=3).map(tuple)
VADS = st.none() | st.builds(ServerVad, prefix_padding_ms=st.integers(0, 2000),
                             silence_duration_ms=st.integers(0, 5000))
CONFIGS = st.builds(SessionConfig, instructions=st.text(max_size=40), voice=VOICES,
                    turn_detection=VADS, tools=TOOLS)


@settings(max_examples=100, deadline=None)
@given(CONFIGS, st.none() | st.text(min_size=1, max_size=20))
def test_setup_round_trips(config: SessionConfig, handle: str | None) -> None:
    codec = GeminiCodec(model="models/x", state=LinkState(handle=handle))
    (frame,) = codec.encode(SessionUpdate(session=config))
    assert decode_client_message(frame) == Setup(model="models/x", session=config, handle=handle)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=2, max_size=2000).map(lambda b: b[: len(b) // 2 * 2]),
                max_size=20))
def test_audio_goes_out_at_16_khz_and_none_is_lost(frames: list[bytes]) -> None:
    codec = GeminiCodec(model="m")
    codec.encode(SessionUpdate(session=SessionConfig(turn_detection=None)))
    codec.encode(InputAudioClear())
    out = [f for pcm in frames for f in codec.encode(InputAudioAppend(audio=pcm))]
    *tail, end = codec.encode(InputAudioCommit())
    decoded = [decode_client_message(f) for f in (*out, *tail)]
    assert all(isinstance(d, AudioIn) for d in decoded)
    assert decode_client_message(end) == ActivityEnd()
    samples_in = sum(len(f) for f in frames) // 2
    samples_out = sum(len(d.audio) for d in decoded if isinstance(d, AudioIn)) // 2
    assert abs(samples_out - samples_in * 2 / 3) <= 2


def test_push_to_talk_maps_clear_and_commit_to_one_activity() -> None:
    codec = GeminiCodec(model="m")
    codec.encode(SessionUpdate(session=SessionConfig(turn_detection=None)))
    assert [decode_client_message(f) for f in codec.encode(InputAudioClear())] == [
        ActivityStart()]
    assert codec.encode(InputAudioClear()) == ()  # a discarded press: the activity stays open
    assert [decode_client_message(f) for f in codec.encode(InputAudioCommit())] == [ActivityEnd()]
    assert codec.encode(InputAudioCommit()) == ()


def test_always_on_sends_no_activity_and_nothing_for_what_gemini_does_itself() -> None:
    codec = GeminiCodec(model="m")
    codec.encode(SessionUpdate(session=SessionConfig()))
    for event in (InputAudioClear(), InputAudioCommit(), ResponseCreate(),
                  ResponseCancel(response_id=ResponseId("r")),
                  ItemTruncate(item_id=ItemId("i"), audio_end_ms=5)):
        assert codec.encode(event) == ()


def test_user_text_and_tool_output_decode_back() -> None:
    codec = GeminiCodec(model="m")
    (text,) = codec.encode(UserText(text="Please repeat."))
    assert decode_client_message(text) == ClientText(text="Please repeat.")
    (tool,) = codec.encode(FunctionCallOutput(call_id=CallId("unknown"), output="{}"))
    assert decode_client_message(tool) == ToolResponse(responses=(("unknown", None, "{}"),))


@pytest.mark.parametrize(("frame", "message"), [
    (b'{"setup": {}}', "field 'setup.model' is missing"),
    (b'{"setup": {"model": "m"}, "toolResponse": {}}', "frame must hold exactly one of"),
    (b'{"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=24000", "data": ""}}}',
     "field 'realtimeInput.audio.mimeType' must be 'audio/pcm;rate=16000'"),
    (b'{"realtimeInput": {}}', "field 'realtimeInput' must hold exactly one of"),
    (b'{"toolResponse": {"functionResponses": [{"response": {}}]}}',
     "field 'toolResponse.functionResponses[0].id' is missing"),
    (b'{"bogus": {}}', "frame must hold exactly one of"),
])
def test_bad_client_frames_are_refused_by_name(frame: bytes, message: str) -> None:
    error = decode_client_message(frame)
    assert isinstance(error, ProtocolError) and error.message.startswith(message), error


def test_always_on_marks_the_users_turn_before_each_answer_but_not_after_a_tool() -> None:
    codec = GeminiCodec(model="m")
    codec.encode(SessionUpdate(session=SessionConfig()))  # automatic activity detection
    first = decode(codec, audio())
    assert kinds(first) == ["SpeechStarted", "SpeechStopped", "ResponseCreated", "AudioDelta"]
    assert first[0].item_id == first[1].item_id
    decode(codec, content(turnComplete=True))
    call = {"toolCall": {"functionCalls": [{"id": "c", "name": "f", "args": {}}]}}
    assert kinds(decode(codec, call)) == [
        "SpeechStarted", "SpeechStopped", "ResponseCreated", "FunctionCallDone", "ResponseDone"]
    assert kinds(decode(codec, audio())) == ["ResponseCreated", "AudioDelta"]  # the tool's answer
    decode(codec, content(interrupted=True))  # SpeechStarted already: only the stop follows
    assert kinds(decode(codec, audio())) == ["SpeechStopped", "ResponseCreated", "AudioDelta"]
