"""pivox.protocol.gemini against the `google-genai` SDK's own Live models.

Client frames pivox encodes validate as `LiveClientMessage` (the SDK's models forbid unknown
keys); server frames serialized from SDK-built `LiveServerMessage`s decode to the expected
events, every field carried over.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pivox.core.events import (
    AudioDelta,
    CallId,
    ClientEvent,
    FunctionCallDone,
    FunctionCallOutput,
    GoAway,
    InputAudioAppend,
    InputAudioClear,
    InputAudioCommit,
    InputTranscriptDelta,
    ServerVad,
    SessionConfig,
    SessionCreated,
    SessionUpdate,
    Tool,
    UserText,
)
from pivox.protocol.gemini import GeminiCodec, LinkState

types = pytest.importorskip("google.genai.types")

PCM = bytes(range(256)) * 8
TOOL = Tool(name="get_time", description="The time.",
            parameters={"type": "object", "properties": {"zone": {"type": "string"}}})
CONFIGS = [
    SessionConfig(),
    SessionConfig(instructions="Be brief.", voice="Kore", turn_detection=None, tools=(TOOL,)),
    SessionConfig(turn_detection=ServerVad(prefix_padding_ms=100, silence_duration_ms=800),
                  tools=(Tool(name="now"),)),
]
EVENTS: list[ClientEvent] = [
    InputAudioClear(), *(InputAudioAppend(audio=PCM) for _ in range(4)), InputAudioCommit(),
    UserText(text="Please repeat your last answer."),
    FunctionCallOutput(call_id=CallId("c1"), output='{"time": "12:00"}'),
]


def _frames() -> list[str]:
    frames: list[str] = []
    for i, config in enumerate(CONFIGS):
        state = LinkState(handle=f"h{i}" if i else None)
        codec = GeminiCodec(model="models/gemini-live", state=state)
        frames += codec.encode(SessionUpdate(session=config))
        for event in EVENTS:
            frames += codec.encode(event)
    return frames


def _validate(frame: str) -> Any:
    """`frame` as the SDK's LiveClientMessage. The SDK's LiveClientSetup lacks
    `realtimeInputConfig` (its converter adds it to the wire dict from LiveConnectConfig):
    that part is validated as the SDK's RealtimeInputConfig on its own."""
    obj = orjson.loads(frame)
    realtime = obj.get("setup", {}).pop("realtimeInputConfig", None)
    if realtime is not None:
        types.RealtimeInputConfig.model_validate_json(orjson.dumps(realtime))
    return types.LiveClientMessage.model_validate_json(orjson.dumps(obj))


@pytest.mark.parametrize("frame", _frames(), ids=lambda f: f[:40])
def test_every_client_frame_validates_as_the_sdk_live_client_message(frame: str) -> None:
    message = _validate(frame)
    assert message.model_dump(exclude_none=True)  # one kind of message, not an empty one


def test_the_setup_carries_what_the_sdk_reads() -> None:
    codec = GeminiCodec(model="models/gemini-live", state=LinkState(handle="h9"))
    (frame,) = codec.encode(SessionUpdate(session=CONFIGS[1]))
    setup = _validate(frame).setup
    assert setup.model == "models/gemini-live"
    assert setup.generation_config.response_modalities == [types.Modality.AUDIO]
    voice = setup.generation_config.speech_config.voice_config.prebuilt_voice_config.voice_name
    assert voice == "Kore"
    assert setup.system_instruction.parts[0].text == "Be brief."
    assert setup.tools[0].function_declarations[0].name == "get_time"
    realtime = types.RealtimeInputConfig.model_validate(
        orjson.loads(frame)["setup"]["realtimeInputConfig"])
    assert realtime.automatic_activity_detection.disabled is True
    assert setup.session_resumption.handle == "h9"
    assert setup.input_audio_transcription is not None
    assert setup.output_audio_transcription is not None
    assert setup.context_window_compression.sliding_window is not None


def _wire(message: Any) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_none=True).encode()


def test_sdk_built_server_messages_decode() -> None:
    codec = GeminiCodec(model="m")
    (created,) = codec.decode(_wire(types.LiveServerMessage(
        setup_complete=types.LiveServerSetupComplete(session_id="s-1"))))
    assert created == SessionCreated(session={"id": "s-1", "provider": "gemini"})
    events = codec.decode(_wire(types.LiveServerMessage(server_content=types.LiveServerContent(
        model_turn=types.Content(role="model", parts=[types.Part(inline_data=types.Blob(
            data=PCM, mime_type="audio/pcm;rate=24000"))]),
        input_transcription=types.Transcription(text="hi"),
    ))))
    assert [type(e) for e in events][-1] is AudioDelta
    assert events[-1].audio == PCM
    assert any(isinstance(e, InputTranscriptDelta) and e.delta == "hi" for e in events)
    done = codec.decode(_wire(types.LiveServerMessage(
        server_content=types.LiveServerContent(generation_complete=True, turn_complete=True),
        usage_metadata=types.UsageMetadata(total_token_count=9),
    )))
    assert [type(e).__name__ for e in done] == ["AudioDone", "ResponseDone"]
    calls = codec.decode(_wire(types.LiveServerMessage(tool_call=types.LiveServerToolCall(
        function_calls=[types.FunctionCall(id="c7", name="get_time", args={"zone": "UTC"})]))))
    call = next(e for e in calls if isinstance(e, FunctionCallDone))
    assert (call.call_id, call.name, call.arguments) == ("c7", "get_time", '{"zone":"UTC"}')
    assert codec.decode(_wire(types.LiveServerMessage(
        go_away=types.LiveServerGoAway(time_left="12s")))) == [GoAway(time_left_ms=12000)]
    interrupted = codec.decode(_wire(types.LiveServerMessage(
        server_content=types.LiveServerContent(interrupted=True))))
    assert [type(e).__name__ for e in interrupted] == ["SpeechStarted"]
    state = codec.state
    codec.decode(_wire(types.LiveServerMessage(
        session_resumption_update=types.LiveServerSessionResumptionUpdate(
            new_handle="handle-2", resumable=True))))
    assert state.handle == "handle-2"


def _camel(value: Any) -> Any:
    """snake_case keys as camelCase (the SDK's converter leaves some snake_case; protobuf's
    JSON mapping accepts both), values under `args`/`parametersJsonSchema` untouched."""
    if isinstance(value, list):
        return [_camel(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        head, *rest = key.split("_")
        name = head + "".join(w[:1].upper() + w[1:] for w in rest)
        out[name] = item if name in ("parametersJsonSchema", "args") else _camel(item)
    return out


@pytest.mark.parametrize("ptt", [True, False], ids=["push-to-talk", "always-on"])
def test_the_setup_is_what_the_sdk_itself_sends_for_the_same_config(ptt: bool) -> None:
    """google-genai's own converter (LiveConnectConfig -> the wire `setup`) gives the same
    message, field for field, as pivox's encoder."""
    genai = pytest.importorskip("google.genai")
    converters = pytest.importorskip("google.genai._live_converters")
    common = pytest.importorskip("google.genai._common")
    detection = types.AutomaticActivityDetection(disabled=True) if ptt else (
        types.AutomaticActivityDetection(disabled=False, prefix_padding_ms=100,
                                         silence_duration_ms=800))
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        speech_config=types.SpeechConfig(voice_config=types.VoiceConfig(
            prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore"))),
        system_instruction=types.Content(parts=[types.Part(text="Be brief.")]),
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
            name=TOOL.name, description=TOOL.description,
            parameters_json_schema=dict(TOOL.parameters))])],
        realtime_input_config=types.RealtimeInputConfig(automatic_activity_detection=detection),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(handle="h1"),
        context_window_compression=types.ContextWindowCompressionConfig(
            sliding_window=types.SlidingWindow()),
    )
    client = genai.Client(api_key="unused")  # builds requests only; nothing is sent
    wire = common.convert_to_dict(converters._LiveConnectParameters_to_mldev(
        api_client=client._api_client,
        from_object=types.LiveConnectParameters(model="models/m", config=config).model_dump(
            exclude_none=True)))
    session = SessionConfig(
        instructions="Be brief.", voice="Kore", tools=(TOOL,),
        turn_detection=None if ptt else ServerVad(prefix_padding_ms=100, silence_duration_ms=800))
    codec = GeminiCodec(model="models/m", state=LinkState(handle="h1"))
    (frame,) = codec.encode(SessionUpdate(session=session))
    assert orjson.loads(frame)["setup"] == _camel(wire["setup"])
