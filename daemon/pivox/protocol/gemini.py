"""Gemini Live wire format ⇄ the unified events of `pivox.core.events` (sans-I/O).

The wire format is that of Google's Gemini Live API, v1beta `BidiGenerateContent` over
WebSocket (reference: https://ai.google.dev/api/live, and the `google-genai` SDK's
`LiveClientMessage` / `LiveServerMessage` models, which the tests validate against). Every
frame is one JSON object holding one message kind (`usageMetadata` may ride along).

Gemini has no event ids, no response or item ids, no truncate and no server speech-start
event: the decoder is a small state machine (`GeminiCodec`) that synthesizes them. Ids are
`resp_g<n>` / `item_g<n>`, `n` counted by a `LinkState` that outlives the connection, so an
id is never reused by the daemon's lifetime (a cancelled id stays dropped after a reconnect).
A response opens at the first model output after the last one closed.

Server messages → unified variants:
    setupComplete                         → SessionCreated(session={id, provider: "gemini"})
    serverContent.modelTurn.parts[].inlineData (audio/pcm;rate=24000)
                                          → [SpeechStarted, SpeechStopped, ResponseCreated,]
                                            AudioDelta
    serverContent.modelTurn.parts[].text  → [...,] TextDelta
    serverContent.outputTranscription     → [...,] TranscriptDelta; TranscriptDone at the end
    serverContent.inputTranscription      → InputTranscriptDelta; InputTranscriptCompleted
                                            when `finished` or when the model answers
    serverContent.generationComplete      → AudioDone (once per response that had audio)
    serverContent.turnComplete            → [AudioDone, TranscriptDone,] ResponseDone(completed)
                                            (a turn with no output: ResponseCreated first)
    serverContent.interrupted             → SpeechStarted (the server's barge-in), then
                                            ResponseDone(cancelled) of the open response
    voiceActivity ACTIVITY_START / _END   → SpeechStarted / SpeechStopped
    toolCall.functionCalls[]              → FunctionCallDone per call, then ResponseDone
                                            (completed): the tool result is answered by a
                                            new response, as in OpenAI's flow
    goAway                                → GoAway(time_left_ms)
    sessionResumptionUpdate               → Unknown (the handle is kept in `LinkState`)
    toolCallCancellation, usageMetadata, anything else
                                          → Unknown(type=<first key>, payload=the frame)
Gemini says neither when the user starts nor when they stop speaking (`voiceActivity` is not
offered by the Developer API), only `interrupted` when they speak over a reply still being
generated. So with automatic activity detection (always-on) the decoder emits SpeechStarted
and SpeechStopped just before each response that answers the user (not the one answering a
tool result): the device passes through user_speaking and thinking as with OpenAI (at the
moment the answer starts), its turn latency counts from there, and a previous reply still
playing from the device's buffer - the user spoke over it, after the server had finished
generating it - is cut as a barge-in. After `interrupted` only the SpeechStopped follows.
In push-to-talk the button marks the turns and none of this is emitted.

Client events → messages (`encode` returns zero or more frames):
    SessionUpdate        → setup {model, generationConfig {responseModalities [AUDIO],
                           speechConfig voice}, systemInstruction, tools[].functionDeclarations
                           (JSON Schema parameters as `parametersJsonSchema`),
                           realtimeInputConfig.automaticActivityDetection (disabled when
                           turn_detection is None: push-to-talk), input/outputAudioTranscription,
                           sessionResumption {handle}, contextWindowCompression}
    InputAudioAppend     → realtimeInput.audio (the unified 24 kHz PCM resampled to 16 kHz by
                           `pivox.core.resample` (soxr, streaming, its state kept across frames; the
                           tail flushed before activityEnd), `audio/pcm;rate=16000`)
    InputAudioClear      → realtimeInput.activityStart (push-to-talk, when none is open)
    InputAudioCommit     → realtimeInput.activityEnd (push-to-talk, when one is open)
    UserText             → clientContent {turns [{role user, parts [{text}]}], turnComplete}
    OutOfBandResponse    → the same, of instructions + text: Gemini has no out-of-band reply
    FunctionCallOutput   → toolResponse.functionResponses [{id, name, response {output}}]
    ResponseCreate, ResponseCancel, ItemTruncate → nothing: Gemini answers by itself once the
                           turn ends, and stops a reply itself when the user speaks over it
With automatic activity detection (always-on) Clear and Commit send nothing: the server
finds the turns. Gemini cannot drop input already sent: a push-to-talk press too short to
count (a second Clear while an activity is open) sends nothing, and its audio joins the
next turn.

Decoders never raise on bad input: a bad frame decodes to `[ProtocolError]` naming the field
and what was expected, and leaves the codec's state as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, Protocol

import orjson
import pybase64

from pivox.core.errors import ProtocolError
from pivox.core.events import (
    AudioDelta,
    AudioDone,
    CallId,
    ClientEvent,
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
    OutOfBandResponse,
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
from pivox.protocol.openai import (
    MAX_FRAME_BYTES,
    Frame,
    _Invalid,
    _parse,
    _read_pcm,
    _wrong_type,
    _wrong_value,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_URL",
    "DEFAULT_VOICE",
    "INPUT_MIME",
    "OUTPUT_MIME",
    "ActivityEnd",
    "ActivityStart",
    "AudioIn",
    "ClientMessage",
    "ClientText",
    "GeminiCodec",
    "LinkState",
    "Setup",
    "ToolResponse",
    "decode_client_message",
    "downsampler",
    "encode_setup",
]

DEFAULT_URL: Final = (
    "wss://generativelanguage.googleapis.com/ws/"
    "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
)
DEFAULT_MODEL: Final = "models/gemini-live-2.5-flash-preview"
DEFAULT_VOICE: Final = "Puck"
INPUT_RATE: Final = 16000
INPUT_MIME: Final = "audio/pcm;rate=16000"
OUTPUT_MIME: Final = "audio/pcm;rate=24000"
_OUTPUT_MIMES: Final = frozenset({OUTPUT_MIME, "audio/pcm"})  # no rate: the documented 24 kHz


@dataclass(slots=True)
class LinkState:
    """What outlives one connection: the resumption handle and the id counter."""

    handle: str | None = None
    counter: int = 0

    def next_id(self, prefix: str) -> str:
        """A new id, `<prefix>_g<n>`, never given before by this state."""
        self.counter += 1
        return f"{prefix}_g{self.counter}"


# --------------------------------------------------------------------------- client side


def encode_setup(config: SessionConfig, *, model: str, handle: str | None = None) -> str:
    """The `setup` message for `config`; `handle` resumes an earlier session."""
    setup: dict[str, Any] = {
        "model": model,
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": config.voice}}},
        },
        "realtimeInputConfig": {
            "automaticActivityDetection": _activity_detection(config),
        },
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
        "sessionResumption": {} if handle is None else {"handle": handle},
        "contextWindowCompression": {"slidingWindow": {}},
    }
    if config.instructions:
        setup["systemInstruction"] = {"parts": [{"text": config.instructions}]}
    if config.tools:
        # pivox's tool parameters are JSON Schema: `parametersJsonSchema`, not `parameters`
        # (an OpenAPI subset with upper-case type names)
        setup["tools"] = [{"functionDeclarations": [
            {"name": t.name, "description": t.description,
             "parametersJsonSchema": dict(t.parameters)}
            if t.parameters else {"name": t.name, "description": t.description}
            for t in config.tools
        ]}]
    return _dumps({"setup": setup})


def _activity_detection(config: SessionConfig) -> dict[str, Any]:
    vad = config.turn_detection
    if vad is None:
        return {"disabled": True}
    fields: dict[str, Any] = {"disabled": False}
    prefix = getattr(vad, "prefix_padding_ms", None)
    silence = getattr(vad, "silence_duration_ms", None)
    if prefix is not None:
        fields["prefixPaddingMs"] = prefix
    if silence is not None:
        fields["silenceDurationMs"] = silence
    return fields


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


class Resample(Protocol):
    """What the codec needs of a streaming resampler (`pivox.core.resample.Resampler`)."""

    def process(self, pcm: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


def downsampler() -> Resample:
    """24 kHz → 16 kHz with soxr's streaming "LQ" filter, which holds back ≤ 8 ms (its "HQ"
    one ~30 ms, latency the end of every push-to-talk turn would add)."""
    from pivox.core.resample import Resampler  # numpy and soxr: imported by Gemini links only

    return Resampler(24000, INPUT_RATE)


# --------------------------------------------------------------------------- server side


@dataclass(slots=True)
class _Turn:
    """The open response, if any: its ids and what it has sent so far."""

    response_id: ResponseId
    item_id: ItemId
    audio: bool = False
    audio_done: bool = False
    transcript: list[str] = field(default_factory=list)


def _opt(obj: dict[str, Any], key: str, types: tuple[type, ...], expected: str,
         path: str) -> Any:
    """`obj[key]` checked to be one of `types` (bool never an int), None when absent/null."""
    value = obj.get(key)
    if value is None:
        return None
    if type(value) not in types:
        raise _wrong_type(path + key, expected, value)
    return value


def _obj(obj: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
    return _opt(obj, key, (dict,), "an object", path)  # type: ignore[no-any-return]


def _str(obj: dict[str, Any], key: str, path: str) -> str | None:
    return _opt(obj, key, (str,), "a string", path)  # type: ignore[no-any-return]


def _bool(obj: dict[str, Any], key: str, path: str) -> bool:
    return bool(_opt(obj, key, (bool,), "a boolean", path))


def _list(obj: dict[str, Any], key: str, path: str) -> list[Any]:
    return _opt(obj, key, (list,), "an array", path) or []


_DURATION: Final = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,9}))?s")


def _duration_ms(value: Any, path: str) -> int:
    """A protobuf Duration in JSON (`"50s"`, `"1.5s"`) in milliseconds."""
    if type(value) is not str:
        raise _wrong_type(path, "a duration such as \"50s\"", value)
    match = _DURATION.fullmatch(value)
    if match is None:
        raise _wrong_value(path, "a duration such as \"50s\"", value)
    seconds, fraction = match.groups()
    return int(seconds) * 1000 + int((fraction or "0").ljust(3, "0")[:3])


def _read_audio(value: Any, path: str) -> bytes:
    """PCM16 from standard base64 or, as protobuf's JSON mapping also allows, URL-safe."""
    try:
        return _read_pcm(value, path)
    except _Invalid:
        if type(value) is not str or ("-" not in value and "_" not in value):
            raise
        try:
            return _read_pcm(value.translate(_URLSAFE), path)
        except _Invalid:
            raise _Invalid(f"field '{path}' must be base64 text, got invalid base64") from None


_URLSAFE: Final = str.maketrans("-_", "+/")


class _Part(NamedTuple):
    """One model output part, checked: audio PCM, text, or something pivox does not play."""

    audio: bytes | None
    text: str | None
    other: dict[str, Any] | None


@dataclass(slots=True)
class _Message:
    """One server frame, checked; applied to the codec's state only once all of it is valid.

    Filled in by the readers of `_READERS`, one per message kind present in the frame.
    """

    frame: dict[str, Any]
    setup_complete: dict[str, Any] | None = None
    parts: tuple[_Part, ...] = ()
    input_text: str | None = None
    input_finished: bool = False
    output_text: str | None = None
    generation_complete: bool = False
    turn_complete: bool = False
    interrupted: bool = False
    voice_activity: str | None = None
    calls: tuple[tuple[str | None, str, str], ...] = ()
    go_away_ms: int | None = None
    go_away: bool = False
    resumption: tuple[str | None, bool] | None = None


_PARTS: Final = "serverContent.modelTurn.parts"


def _read_part(part: Any, index: int) -> _Part:
    """One `modelTurn.parts[]` entry; error paths are built only on an error."""
    if type(part) is not dict:
        raise _wrong_type(f"{_PARTS}[{index}]", "an object", part)
    inline = part.get("inlineData")
    if inline is None:
        text = part.get("text")
        if text is None:
            return _Part(None, None, part)
        if type(text) is not str:
            raise _wrong_type(f"{_PARTS}[{index}].text", "a string", text)
        return _Part(None, text, None)
    path = f"{_PARTS}[{index}].inlineData"
    if type(inline) is not dict:
        raise _wrong_type(path, "an object", inline)
    mime = inline.get("mimeType")
    if type(mime) is not str or mime not in _OUTPUT_MIMES:
        if mime is not None and type(mime) is not str:
            raise _wrong_type(path + ".mimeType", "a string", mime)
        raise _wrong_value(path + ".mimeType", f"'{OUTPUT_MIME}'", mime)
    data = inline.get("data")
    if data is None:
        raise _Invalid(f"field '{path}.data' is missing, expected base64 text")
    return _Part(_read_audio(data, path + ".data"), None, None)


def _read_transcription(value: Any, key: str) -> tuple[str | None, bool]:
    path = f"serverContent.{key}"
    if type(value) is not dict:
        raise _wrong_type(path, "an object", value)
    return _str(value, "text", path + "."), _bool(value, "finished", path + ".")


def _body(value: Any, path: str) -> dict[str, Any] | None:
    """A message kind's body: an object, or None for null (as if absent)."""
    if value is None or type(value) is dict:
        return value
    raise _wrong_type(path, "an object", value)


def _read_setup_complete(m: _Message, value: Any) -> None:
    m.setup_complete = _body(value, "setupComplete") or {}
    _str(m.setup_complete, "sessionId", "setupComplete.")


def _read_content(m: _Message, value: Any) -> None:
    content = _body(value, "serverContent")
    if content is None:
        return
    turn = content.get("modelTurn")
    if turn is not None:
        if type(turn) is not dict:
            raise _wrong_type("serverContent.modelTurn", "an object", turn)
        parts = _list(turn, "parts", "serverContent.modelTurn.")
        m.parts = tuple([_read_part(part, i) for i, part in enumerate(parts)])
    if (heard := content.get("inputTranscription")) is not None:
        m.input_text, m.input_finished = _read_transcription(heard, "inputTranscription")
    if (said := content.get("outputTranscription")) is not None:
        m.output_text, _ = _read_transcription(said, "outputTranscription")
    for key, attr in _CONTENT_FLAGS:
        flag = content.get(key)
        if flag is not None:
            if type(flag) is not bool:
                raise _wrong_type("serverContent." + key, "a boolean", flag)
            setattr(m, attr, flag)


_CONTENT_FLAGS: Final = (("generationComplete", "generation_complete"),
                         ("turnComplete", "turn_complete"), ("interrupted", "interrupted"))
_ACTIVITY_TYPES: Final = ("ACTIVITY_START", "ACTIVITY_END")


def _read_voice_activity(m: _Message, value: Any) -> None:
    activity = _body(value, "voiceActivity")
    if activity is None:
        return
    kind = _str(activity, "voiceActivityType", "voiceActivity.")
    if kind not in _ACTIVITY_TYPES:
        raise _wrong_value("voiceActivity.voiceActivityType", "ACTIVITY_START or ACTIVITY_END",
                           kind)
    m.voice_activity = kind


def _read_tool_call(m: _Message, value: Any) -> None:
    tool_call = _body(value, "toolCall")
    if tool_call is not None:
        calls = _list(tool_call, "functionCalls", "toolCall.")
        m.calls = tuple(_read_call(c, f"toolCall.functionCalls[{i}]") for i, c in enumerate(calls))


def _read_go_away(m: _Message, value: Any) -> None:
    go_away = _body(value, "goAway")
    if go_away is not None:
        left = go_away.get("timeLeft")
        m.go_away = True
        m.go_away_ms = None if left is None else _duration_ms(left, "goAway.timeLeft")


def _read_resumption(m: _Message, value: Any) -> None:
    update = _body(value, "sessionResumptionUpdate")
    if update is not None:
        path = "sessionResumptionUpdate."
        m.resumption = (_str(update, "newHandle", path), _bool(update, "resumable", path))


def _check_body(path: str) -> Callable[[_Message, Any], None]:
    """A kind pivox only passes on (as Unknown): its body must still be an object."""

    def check(m: _Message, value: Any) -> None:
        _body(value, path)

    return check


_READERS: Final[dict[str, Callable[[_Message, Any], None]]] = {
    "setupComplete": _read_setup_complete,
    "serverContent": _read_content,
    "voiceActivity": _read_voice_activity,
    "toolCall": _read_tool_call,
    "goAway": _read_go_away,
    "sessionResumptionUpdate": _read_resumption,
    "toolCallCancellation": _check_body("toolCallCancellation"),
    "usageMetadata": _check_body("usageMetadata"),
}
"""One reader per message kind (table, not a chain); kinds not here are kept as Unknown."""


def _read_message(obj: dict[str, Any]) -> _Message:
    """Check every part of a server frame pivox reads; raise _Invalid at the first bad one."""
    message = _Message(obj)
    for key, value in obj.items():
        reader = _READERS.get(key)
        if reader is not None:
            reader(message, value)
    return message


def _read_call(call: Any, path: str) -> tuple[str | None, str, str]:
    if type(call) is not dict:
        raise _wrong_type(path, "an object", call)
    name = _str(call, "name", path + ".")
    if name is None:
        raise _Invalid(f"field '{path}.name' is missing, expected a string")
    args = _obj(call, "args", path + ".") or {}
    return _str(call, "id", path + "."), name, orjson.dumps(args).decode()


class GeminiCodec:
    """One connection's codec: `encode(client event) -> frames`, `decode(frame) -> events`.

    `state` is shared with the codecs of earlier and later connections (ids, resumption).
    `resampler` makes what turns the unified 24 kHz input into Gemini's 16 kHz.
    """

    def __init__(
        self, *, model: str, state: LinkState | None = None,
        resampler: Callable[[], Resample] = downsampler,
    ) -> None:
        self.model = model
        self.state = state if state is not None else LinkState()
        self._make_resampler = resampler
        self._resampler: Resample | None = None
        self._manual = True  # until a setup says otherwise: no synthetic speech events
        self._activity_open = False
        self._turn: _Turn | None = None
        self._closed_by_tool = False
        self._user_speaking = False
        self._user_item: ItemId | None = None
        self._user_text: list[str] = []
        self._call_names: dict[str, str] = {}

    # ------------------------------------------------------------------ encode

    def encode(self, event: ClientEvent) -> tuple[str, ...]:
        """The frames that carry `event` to Gemini (none for what Gemini does by itself)."""
        if isinstance(event, SessionUpdate):
            self._manual = event.session.turn_detection is None
            return (encode_setup(event.session, model=self.model, handle=self.state.handle),)
        if isinstance(event, InputAudioAppend):
            if self._resampler is None:
                self._resampler = self._make_resampler()
            return _audio_message(self._resampler.process(event.audio))
        if isinstance(event, InputAudioClear):
            if not self._manual or self._activity_open:
                return ()
            self._activity_open = True
            return (_dumps({"realtimeInput": {"activityStart": {}}}),)
        if isinstance(event, InputAudioCommit):
            if not self._manual or not self._activity_open:
                return ()
            self._activity_open = False
            tail = () if self._resampler is None else _audio_message(self._resampler.flush())
            return (*tail, _dumps({"realtimeInput": {"activityEnd": {}}}))
        if isinstance(event, UserText | OutOfBandResponse):
            # Gemini Live has no out-of-band response: an announcement is a turn of the
            # conversation, its instructions leading the text (README, "Announcements")
            text = event.text if isinstance(event, UserText) else (
                f"{event.instructions}\n\n{event.text}")
            return (_dumps({"clientContent": {
                "turns": [{"role": "user", "parts": [{"text": text}]}],
                "turnComplete": True,
            }}),)
        if isinstance(event, FunctionCallOutput):
            response: dict[str, Any] = {"id": event.call_id, "response": {"output": event.output}}
            name = self._call_names.pop(event.call_id, None)
            if name is not None:
                response["name"] = name
            return (_dumps({"toolResponse": {"functionResponses": [response]}}),)
        assert isinstance(event, ResponseCreate | ResponseCancel | ItemTruncate), event
        return ()

    # ------------------------------------------------------------------ decode

    def decode(self, frame: Frame) -> list[ServerEvent | ProtocolError]:
        """The unified events of one server frame, in order; a bad frame is [ProtocolError]."""
        try:
            message = _read_message(_parse(frame))
        except _Invalid as exc:
            return [ProtocolError(str(exc), event_type=_kind_of(frame))]
        events = self._apply(message)
        if not events:
            kind = next(iter(message.frame), "empty")
            return [Unknown(type=kind, payload=message.frame)]
        return events

    def _apply(self, m: _Message) -> list[ServerEvent | ProtocolError]:
        out: list[ServerEvent | ProtocolError] = []
        if m.setup_complete is not None:
            session_id = m.setup_complete.get("sessionId") or self.state.next_id("sess")
            out.append(SessionCreated(session={"id": session_id, "provider": "gemini"}))
        if m.resumption is not None:
            handle, resumable = m.resumption
            if resumable and handle:
                self.state.handle = handle
        if m.voice_activity == "ACTIVITY_START" or m.interrupted:
            out.extend(self._user_started())
        if m.interrupted and self._turn is not None:
            out.extend(self._close("cancelled"))
        if m.input_text:
            out.append(InputTranscriptDelta(item_id=self._user(), content_index=0,
                                            delta=m.input_text))
            self._user_text.append(m.input_text)
        if m.input_finished:
            out.extend(self._user_done())
        for part in m.parts:
            if part.audio is not None:
                turn = self._open(out)
                turn.audio, turn.audio_done = True, False  # audio after generationComplete
                out.append(AudioDelta(response_id=turn.response_id, item_id=turn.item_id,
                                      output_index=0, content_index=0, audio=part.audio))
            elif part.text is not None:
                turn = self._open(out)
                out.append(TextDelta(response_id=turn.response_id, item_id=turn.item_id,
                                     output_index=0, content_index=0, delta=part.text))
            else:
                out.append(Unknown(type="serverContent.modelTurn.part", payload=part.other or {}))
        if m.output_text:
            turn = self._open(out)
            turn.transcript.append(m.output_text)
            out.append(TranscriptDelta(response_id=turn.response_id, item_id=turn.item_id,
                                       output_index=0, content_index=0, delta=m.output_text))
        if m.voice_activity == "ACTIVITY_END" and self._user_speaking:
            self._user_speaking = False
            out.append(SpeechStopped(audio_end_ms=0, item_id=self._user()))
        if m.calls:
            turn = self._open(out)
            for index, (call_id, name, arguments) in enumerate(m.calls):
                call = call_id or self.state.next_id("call")
                self._call_names[call] = name
                out.append(FunctionCallDone(
                    response_id=turn.response_id, item_id=ItemId(self.state.next_id("item")),
                    output_index=index, call_id=CallId(call), name=name, arguments=arguments,
                ))
            out.extend(self._close("completed"))
            self._closed_by_tool = True
        if m.generation_complete and self._turn is not None:
            out.extend(self._audio_done(self._turn))
        if m.turn_complete:
            if self._turn is None and not self._closed_by_tool:
                self._open(out)
            if self._turn is not None:
                out.extend(self._close("completed"))
            self._closed_by_tool = False
        if m.go_away:
            out.append(GoAway(time_left_ms=m.go_away_ms))
        return out

    def _user(self) -> ItemId:
        if self._user_item is None:
            self._user_item = ItemId(self.state.next_id("item"))
        return self._user_item

    def _user_started(self) -> list[ServerEvent | ProtocolError]:
        self._user_speaking = True
        return [SpeechStarted(audio_start_ms=0, item_id=self._user())]

    def _user_done(self) -> list[ServerEvent | ProtocolError]:
        """The user's turn is over: its transcript, if any, is complete."""
        item, text = self._user_item, "".join(self._user_text)
        self._user_item, self._user_text = None, []
        if item is None or not text:
            return []
        return [InputTranscriptCompleted(item_id=item, content_index=0, transcript=text)]

    def _open(self, out: list[ServerEvent | ProtocolError]) -> _Turn:
        """The open response, opening one (and ending the user's turn) if none is."""
        if self._turn is not None:
            return self._turn
        if not (self._user_speaking or self._manual or self._closed_by_tool):
            # always-on: an answer means the user spoke; a reply still playing is stale
            out.append(SpeechStarted(audio_start_ms=0, item_id=self._user()))
            self._user_speaking = True
        if self._user_speaking:
            self._user_speaking = False
            out.append(SpeechStopped(audio_end_ms=0, item_id=self._user()))
        out.extend(self._user_done())
        self._closed_by_tool = False
        turn = _Turn(ResponseId(self.state.next_id("resp")), ItemId(self.state.next_id("item")))
        self._turn = turn
        response = {"id": turn.response_id, "object": "realtime.response", "status": "in_progress"}
        out.append(ResponseCreated(response_id=turn.response_id, response=response))
        return turn

    def _audio_done(self, turn: _Turn) -> list[ServerEvent | ProtocolError]:
        if not turn.audio or turn.audio_done:
            return []
        turn.audio_done = True
        return [AudioDone(response_id=turn.response_id, item_id=turn.item_id,
                          output_index=0, content_index=0)]

    def _close(self, status: str) -> list[ServerEvent | ProtocolError]:
        turn = self._turn
        assert turn is not None
        self._turn = None
        out = self._audio_done(turn) if status == "completed" else []
        if turn.transcript:
            out.append(TranscriptDone(response_id=turn.response_id, item_id=turn.item_id,
                                      output_index=0, content_index=0,
                                      transcript="".join(turn.transcript)))
        response = {"id": turn.response_id, "object": "realtime.response", "status": status}
        out.append(ResponseDone(response_id=turn.response_id, status=status, response=response))
        return out

    # ------------------------------------------------------------------ fast path support

    def audio_ids(self) -> tuple[ResponseId, ItemId] | None:
        """The ids an audio-only frame decodes under without opening a response, else None."""
        turn = self._turn
        if turn is None or not turn.audio or turn.audio_done:
            return None
        return turn.response_id, turn.item_id


def _audio_message(pcm: bytes) -> tuple[str, ...]:
    if not pcm:
        return ()
    data = pybase64.b64encode(pcm).decode("ascii")
    return (_dumps({"realtimeInput": {"audio": {"mimeType": INPUT_MIME, "data": data}}}),)


def _kind_of(frame: Frame) -> str | None:
    """The message kind of a frame refused as bad, when it can be told (first key)."""
    size = frame.nbytes if isinstance(frame, memoryview) else len(frame)
    if size > MAX_FRAME_BYTES:
        return None
    try:
        obj = orjson.loads(frame)
    except (orjson.JSONDecodeError, TypeError):
        return None
    if type(obj) is not dict or not obj:
        return None
    return str(next(iter(obj)))


# --------------------------------------------------------------------------- the server's view


@dataclass(frozen=True, slots=True, kw_only=True)
class Setup:
    """`setup`: what a client asks of the session; `handle` resumes an earlier one."""

    model: str
    session: SessionConfig
    handle: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioIn:
    """`realtimeInput.audio`: 16 kHz PCM16."""

    audio: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityStart:
    """`realtimeInput.activityStart`: the user starts a turn (activity detection off)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityEnd:
    """`realtimeInput.activityEnd`: the user's turn is over."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientText:
    """`clientContent` with one user text part (or `realtimeInput.text`)."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResponse:
    """`toolResponse.functionResponses`, each as (id, name or None, output text)."""

    responses: tuple[tuple[str, str | None, str], ...]


ClientMessage = Setup | AudioIn | ActivityStart | ActivityEnd | ClientText | ToolResponse


def decode_client_message(frame: Frame) -> ClientMessage | ProtocolError:
    """One client frame as the server sees it; a bad one as ProtocolError (never raises)."""
    kind: str | None = None
    try:
        obj = _camel(_parse(frame))
        kind = next(iter(obj), None)
        if kind not in _CLIENT_READERS or len(obj) != 1:
            raise _Invalid(
                f"frame must hold exactly one of {', '.join(_CLIENT_READERS)}, got {sorted(obj)}"
            )
        body = obj[kind]
        if type(body) is not dict:
            raise _wrong_type(kind, "an object", body)
        return _CLIENT_READERS[kind](body)
    except _Invalid as exc:
        return ProtocolError(str(exc), event_type=kind)


_OPAQUE: Final = frozenset({"parameters", "parametersJsonSchema", "args", "response"})
"""Keys whose values are the user's own JSON: their keys are never renamed."""


def _camel(value: Any) -> Any:
    """`value` with snake_case keys renamed lowerCamelCase: protobuf's JSON mapping accepts
    both names of a field, and the google-genai client sends snake_case (`realtime_input`)."""
    if type(value) is list:
        return [_camel(v) for v in value]
    if type(value) is not dict:
        return value
    out = {}
    for key, item in value.items():
        if "_" in key:
            head, *rest = key.split("_")
            key = head + "".join(word[:1].upper() + word[1:] for word in rest)
        out[key] = item if key in _OPAQUE else _camel(item)
    return out


def _read_setup(body: dict[str, Any]) -> Setup:
    model = _str(body, "model", "setup.")
    if not model:
        raise _Invalid("field 'setup.model' is missing, expected a string")
    config = _obj(body, "generationConfig", "setup.") or {}
    modalities = _list(config, "responseModalities", "setup.generationConfig.")
    if modalities not in ([], ["AUDIO"]):
        raise _wrong_value("setup.generationConfig.responseModalities", "['AUDIO']", modalities)
    speech = _obj(config, "speechConfig", "setup.generationConfig.") or {}
    voice_config = _obj(speech, "voiceConfig", "setup.generationConfig.speechConfig.") or {}
    prebuilt = _obj(voice_config, "prebuiltVoiceConfig", "setup.generationConfig.speechConfig."
                    "voiceConfig.") or {}
    voice = _str(prebuilt, "voiceName", "setup.generationConfig.speechConfig.voiceConfig."
                 "prebuiltVoiceConfig.") or DEFAULT_VOICE
    instruction = _obj(body, "systemInstruction", "setup.") or {}
    instructions = "".join(
        _str(part, "text", f"setup.systemInstruction.parts[{i}].") or ""
        for i, part in enumerate(_list(instruction, "parts", "setup.systemInstruction."))
        if type(part) is dict
    )
    tools = tuple(
        _read_declaration(d, f"setup.tools[{i}].functionDeclarations[{j}]")
        for i, tool in enumerate(_list(body, "tools", "setup."))
        for j, d in enumerate(_list(_as_obj(tool, f"setup.tools[{i}]"), "functionDeclarations",
                                    f"setup.tools[{i}]."))
    )
    realtime = _obj(body, "realtimeInputConfig", "setup.") or {}
    detection = _obj(realtime, "automaticActivityDetection", "setup.realtimeInputConfig.") or {}
    path = "setup.realtimeInputConfig.automaticActivityDetection."
    vad: ServerVad | None = None
    if not _bool(detection, "disabled", path):
        defaults = ServerVad()
        prefix = _opt(detection, "prefixPaddingMs", (int,), "an integer", path)
        silence = _opt(detection, "silenceDurationMs", (int,), "an integer", path)
        vad = ServerVad(
            prefix_padding_ms=defaults.prefix_padding_ms if prefix is None else prefix,
            silence_duration_ms=defaults.silence_duration_ms if silence is None else silence,
        )
    resumption = _obj(body, "sessionResumption", "setup.") or {}
    session = SessionConfig(instructions=instructions, voice=voice, turn_detection=vad,
                            tools=tools)
    return Setup(model=model, session=session,
                 handle=_str(resumption, "handle", "setup.sessionResumption."))


def _as_obj(value: Any, path: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise _wrong_type(path, "an object", value)
    return value


def _read_declaration(value: Any, path: str) -> Tool:
    declaration = _as_obj(value, path)
    name = _str(declaration, "name", path + ".")
    if not name:
        raise _Invalid(f"field '{path}.name' is missing, expected a string")
    schema = _obj(declaration, "parametersJsonSchema", path + ".")
    if schema is None:
        schema = _obj(declaration, "parameters", path + ".")
    return Tool(name=name, description=_str(declaration, "description", path + ".") or "",
                parameters=schema or {})


def _read_realtime(body: dict[str, Any]) -> ClientMessage:
    keys = [k for k in ("audio", "activityStart", "activityEnd", "text") if k in body]
    if len(keys) != 1 or len(body) != 1:
        raise _Invalid("field 'realtimeInput' must hold exactly one of audio, activityStart, "
                       f"activityEnd, text, got {sorted(body)}")
    if keys[0] == "activityStart":
        return ActivityStart()
    if keys[0] == "activityEnd":
        return ActivityEnd()
    if keys[0] == "text":
        return ClientText(text=_str(body, "text", "realtimeInput.") or "")
    audio = _as_obj(body["audio"], "realtimeInput.audio")
    mime = _str(audio, "mimeType", "realtimeInput.audio.")
    if mime != INPUT_MIME:
        raise _wrong_value("realtimeInput.audio.mimeType", f"'{INPUT_MIME}'", mime)
    return AudioIn(audio=_read_pcm(audio.get("data"), "realtimeInput.audio.data"))


def _read_client_content(body: dict[str, Any]) -> ClientText:
    texts = [
        _str(_as_obj(part, f"clientContent.turns[{i}].parts[{j}]"), "text",
             f"clientContent.turns[{i}].parts[{j}].") or ""
        for i, turn in enumerate(_list(body, "turns", "clientContent."))
        for j, part in enumerate(_list(_as_obj(turn, f"clientContent.turns[{i}]"), "parts",
                                       f"clientContent.turns[{i}]."))
    ]
    return ClientText(text="".join(texts))


def _read_tool_response(body: dict[str, Any]) -> ToolResponse:
    responses = []
    for i, value in enumerate(_list(body, "functionResponses", "toolResponse.")):
        path = f"toolResponse.functionResponses[{i}]."
        response = _as_obj(value, path[:-1])
        call_id = _str(response, "id", path)
        if call_id is None:
            raise _Invalid(f"field '{path}id' is missing, expected a string")
        result = _obj(response, "response", path) or {}
        output = result.get("output")
        text = output if type(output) is str else orjson.dumps(result).decode()
        responses.append((call_id, _str(response, "name", path), text))
    return ToolResponse(responses=tuple(responses))


_CLIENT_READERS: Final[dict[str, Callable[[dict[str, Any]], ClientMessage]]] = {
    "setup": _read_setup,
    "realtimeInput": _read_realtime,
    "clientContent": _read_client_content,
    "toolResponse": _read_tool_response,
}
