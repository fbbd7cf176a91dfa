"""The bundled Gemini Live server over real websockets on loopback.

Every frame it sends validates as google-genai's `LiveServerMessage` (strictly: the SDK's
models forbid unknown keys) and decodes with pivox's own codec; the SDK's own client runs a
turn against it over TLS.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pivox.core.events import (
    AudioDelta,
    ClientEvent,
    FunctionCallDone,
    FunctionCallOutput,
    InputAudioAppend,
    InputAudioClear,
    InputAudioCommit,
    ServerEvent,
    ServerVad,
    SessionConfig,
    SessionUpdate,
    SpeechStarted,
    Tool,
    TranscriptDone,
    UserText,
)
from pivox.protocol.gemini import GeminiCodec, LinkState
from pivox.server import GeminiServer, ServerOptions
from tests.fixtures_server import TEST_OPTIONS, pcm_silence, pcm_tone

types = pytest.importorskip("google.genai.types")

PTT = SessionConfig(turn_detection=None, tools=(Tool(name="get_time"),))
ALWAYS_ON = SessionConfig(turn_detection=ServerVad(silence_duration_ms=200))


@dataclass
class GeminiClient:
    """pivox's codec on a raw websocket; every frame received is checked against the SDK."""

    ws: ClientConnection
    codec: GeminiCodec
    events: list[ServerEvent] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    async def send(self, event: ClientEvent) -> None:
        for frame in self.codec.encode(event):
            await self.ws.send(frame)

    async def recv(self) -> list[ServerEvent]:
        frame = await self.ws.recv(decode=False)
        message = types.LiveServerMessage.model_validate_json(frame)
        assert message.model_dump(exclude_none=True), frame[:200]
        self.kinds.append(next(iter(orjson.loads(frame))))
        events = self.codec.decode(frame)
        assert all(not isinstance(e, Exception) for e in events), (events, frame[:200])
        self.events += events  # type: ignore[arg-type]
        return events  # type: ignore[return-value]

    async def until(self, kind: type) -> list[ServerEvent]:
        """Events up to and including the first of `kind`."""
        seen: list[ServerEvent] = []
        async with asyncio.timeout(10):
            while not any(isinstance(e, kind) for e in seen):
                seen += await self.recv()
        return seen


@asynccontextmanager
async def client(url: str, config: SessionConfig, *, state: LinkState | None = None,
                 headers: dict[str, str] | None = None) -> AsyncIterator[GeminiClient]:
    async with connect(url, additional_headers=headers or {}) as ws:
        c = GeminiClient(ws, GeminiCodec(model="models/pivox-test", state=state or LinkState()))
        await c.send(SessionUpdate(session=config))
        yield c


@asynccontextmanager
async def gemini_server(**kwargs: Any) -> AsyncIterator[GeminiServer]:
    options = {**TEST_OPTIONS, **kwargs.pop("options", {})}
    async with GeminiServer(ServerOptions(**options), **kwargs) as server:
        yield server


def names(events: list[ServerEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


async def test_setup_then_a_push_to_talk_turn() -> None:
    async with gemini_server() as server, client(server.url, PTT) as c:
        assert names(await c.recv()) == ["SessionCreated"]
        assert names(await c.recv()) == ["Unknown"]  # the first resumption handle
        assert c.codec.state.handle is not None
        await c.send(InputAudioClear())
        for _ in range(10):
            await c.send(InputAudioAppend(audio=pcm_tone(100)))
        await c.send(InputAudioCommit())
        events = await c.until(TranscriptDone)
        assert "InputTranscriptCompleted" in names(events)
        assert names(events)[-3:] == ["AudioDone", "TranscriptDone", "ResponseDone"]
        audio = b"".join(e.audio for e in events if isinstance(e, AudioDelta))
        assert len(audio) == 600 * 48  # the 600 ms ramp reply
        done = next(e for e in events if isinstance(e, TranscriptDone))
        assert done.transcript.startswith("I heard 1.0 seconds of audio, turn 1")
        record = server.connections[0]
        assert record.setup is not None and record.setup.model == "models/pivox-test"
        assert record.setup.session == PTT


async def test_always_on_turn_and_barge_in_by_speech() -> None:
    async with gemini_server(options={"speed": 1.0, "reply_ms": 3000}) as server, \
            client(server.url, ALWAYS_ON) as c:
        await c.recv()  # setupComplete
        await c.send(InputAudioAppend(audio=pcm_tone(400)))
        await c.send(InputAudioAppend(audio=pcm_silence(400)))
        started = await c.until(AudioDelta)
        assert names(started)[-2:] == ["ResponseCreated", "AudioDelta"]
        await c.send(InputAudioAppend(audio=pcm_tone(200)))  # the user speaks over the reply
        events = await c.until(SpeechStarted)
        done = [e for e in events if type(e).__name__ == "ResponseDone"]
        assert done and done[0].status == "cancelled"  # type: ignore[attr-defined]
        assert "serverContent.interrupted" in server.connections[0].sent


async def test_tool_call_round_trip() -> None:
    async with gemini_server(options={"tool_call": "get_time"}) as server, \
            client(server.url, PTT) as c:
        await c.send(UserText(text="What time is it?"))
        events = await c.until(FunctionCallDone)
        call = next(e for e in events if isinstance(e, FunctionCallDone))
        assert call.name == "get_time"
        await c.send(FunctionCallOutput(call_id=call.call_id, output='{"time": "12:00"}'))
        reply = await c.until(TranscriptDone)
        done = next(e for e in reply if isinstance(e, TranscriptDone))
        assert done.transcript.startswith('The get_time tool said: {"time": "12:00"}')
        responses = [m for _, m in server.connections[0].received
                     if type(m).__name__ == "ToolResponse"]
        assert responses[0].responses == ((call.call_id, "get_time", '{"time": "12:00"}'),)


async def test_go_away_then_the_server_closes() -> None:
    async with gemini_server(go_away_s=0.2, time_left_s=0.3) as server, \
            client(server.url, PTT) as c:
        events: list[ServerEvent] = []
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                while True:
                    events += await c.recv()
        assert "GoAway" in names(events)
        goaway = next(e for e in events if type(e).__name__ == "GoAway")
        assert goaway.time_left_ms == 300  # type: ignore[attr-defined]
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
        await server.connections[0].closed.wait()


async def test_a_resumed_session_continues_its_turns() -> None:
    state = LinkState()
    async with gemini_server() as server:
        async with client(server.url, PTT, state=state) as c:
            await c.send(UserText(text="one"))
            await c.until(TranscriptDone)
            await c.recv()  # the handle after the turn
        async with client(server.url, PTT, state=state) as c:
            await c.send(UserText(text="two"))
            events = await c.until(TranscriptDone)
        done = next(e for e in events if isinstance(e, TranscriptDone))
        assert done.transcript.startswith("You said: two, turn 2")
        assert [r.resumed for r in server.connections] == [False, True]


@pytest.mark.parametrize("how", ["header", "query", "none", "wrong"])
async def test_the_key_is_checked_like_google_does(how: str) -> None:
    async with gemini_server(options={"api_key": "k-123"}) as server:
        url, headers = server.url, {}
        if how == "header":
            headers = {"x-goog-api-key": "k-123"}
        elif how == "query":
            url += "?key=k-123"
        elif how == "wrong":
            headers = {"x-goog-api-key": "k-999"}
        if how in ("header", "query"):
            async with client(url, PTT, headers=headers) as c:
                assert names(await c.recv()) == ["SessionCreated"]
            return
        async with connect(url, additional_headers=headers) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()  # closed before any setup
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                1007, "API key not valid. Please pass a valid API key.")


async def test_a_message_before_setup_or_a_bad_one_closes_with_1007() -> None:
    async with gemini_server() as server:
        for frame in ('{"realtimeInput": {"activityStart": {}}}', '{"nonsense": 1}'):
            async with connect(server.url) as ws:
                await ws.send(frame)
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: (server context, client context)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


async def test_the_google_genai_client_runs_a_turn_against_the_server(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    genai = pytest.importorskip("google.genai")
    server_ctx, client_ctx = tls
    async with gemini_server(options={"api_key": "k-sdk"}, ssl=server_ctx) as server:
        sdk = genai.Client(api_key="k-sdk", http_options=types.HttpOptions(
            base_url=f"https://127.0.0.1:{server.port}", api_version="v1beta",
            async_client_args={"ssl": client_ctx}))
        config = types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO],
            realtime_input_config=types.RealtimeInputConfig(
                automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)),
            output_audio_transcription=types.AudioTranscriptionConfig(),
        )
        audio, text = bytearray(), []
        async with sdk.aio.live.connect(model="pivox-test", config=config) as session:
            await session.send_realtime_input(activity_start=types.ActivityStart())
            await session.send_realtime_input(audio=types.Blob(
                data=bytes(32000), mime_type="audio/pcm;rate=16000"))
            await session.send_realtime_input(activity_end=types.ActivityEnd())
            async with asyncio.timeout(10):
                async for message in session.receive():
                    content = message.server_content
                    if content and content.model_turn:
                        audio += b"".join(p.inline_data.data for p in content.model_turn.parts)
                    if content and content.output_transcription:
                        text.append(content.output_transcription.text)
                    if content and content.turn_complete:
                        break
        assert len(audio) == 600 * 48
        assert "".join(text).startswith("I heard 1.0 seconds of audio, turn 1")
        record = server.connections[0]
        assert record.setup is not None and record.setup.model == "models/pivox-test"
