"""`pivox serve` under clients nobody here wrote: the `openai` SDK's GA and beta realtime
clients and the openai-agents realtime runner, over real loopback websockets.

Every frame the SDK clients receive is validated strictly against the SDK's model for its
type (`tests/sdk_models.py`), and the SDK's own lenient parse of it must agree.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import pydantic
import pytest
from agents import function_tool, set_tracing_disabled
from agents.realtime import RealtimeAgent, RealtimeRunner
from openai import AsyncOpenAI

from pivox.server import RealtimeServer
from tests.fixtures_server import StartServer, pcm_silence, pcm_tone
from tests.sdk_models import Dialect, server_event_model

DIALECTS: list[Dialect] = ["ga", "beta"]
AUDIO_DELTA = {"ga": "response.output_audio.delta", "beta": "response.audio.delta"}
ITEM_ADDED = {"ga": "conversation.item.added", "beta": "conversation.item.created"}
AUDIO_PART = {"ga": "output_audio", "beta": "audio"}
TEXT_PART = {"ga": "output_text", "beta": "text"}
TOOL = {
    "type": "function", "name": "get_weather", "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 100,
       "silence_duration_ms": 300}
SERVER = {"tool_call": "get_weather", "tool_arguments": '{"city": "Oslo"}'}
_TRANSCRIBED = "conversation.item.input_audio_transcription.completed"


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> Dialect:
    return request.param  # type: ignore[no-any-return]


def session(dialect: Dialect, turn_detection: dict[str, Any] | None, **extra: Any) -> Any:
    """A session.update payload in the dialect's shape, transcription on."""
    if dialect == "ga":
        return {"type": "realtime", "audio": {"input": {
            "turn_detection": turn_detection, "transcription": {"model": "gpt-4o-transcribe"},
        }}, **extra}
    return {"turn_detection": turn_detection,
            "input_audio_transcription": {"model": "whisper-1"}, **extra}


@dataclass
class SdkPeer:
    """One SDK connection; every frame it receives passes the strict check first."""

    conn: Any
    dialect: Dialect
    received: list[pydantic.BaseModel] = field(default_factory=list)

    async def recv(self) -> Any:
        raw = await asyncio.wait_for(self.conn.recv_bytes(), 10)
        strict = server_event_model(raw, self.dialect)
        lenient = self.conn.parse_event(raw)  # what an SDK user gets
        assert type(lenient) is type(strict) and lenient.model_dump() == strict.model_dump()
        self.received.append(strict)
        return strict

    async def until(self, wire_type: str) -> list[Any]:
        """Every event up to and including the first of `wire_type`."""
        events = [await self.recv()]
        while events[-1].type != wire_type:
            events.append(await self.recv())
        return events

    async def append(self, pcm: bytes, chunk_ms: int = 100) -> None:
        step = 48 * chunk_ms
        for offset in range(0, len(pcm), step):
            chunk = base64.b64encode(pcm[offset : offset + step]).decode()
            await self.conn.input_audio_buffer.append(audio=chunk)


@asynccontextmanager
async def sdk_peer(
    server: RealtimeServer, dialect: Dialect, turn_detection: dict[str, Any] | None,
    **extra: Any,
) -> AsyncIterator[SdkPeer]:
    """Connect with the SDK's own client, read session.created, update the session."""
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=server.url.removesuffix("/realtime"))
    realtime = client.realtime if dialect == "ga" else client.beta.realtime
    model = "gpt-realtime" if dialect == "ga" else "gpt-4o-realtime-preview"
    async with realtime.connect(model=model) as conn:
        peer = SdkPeer(conn, dialect)
        assert (await peer.recv()).type == "session.created"
        await conn.session.update(session=session(dialect, turn_detection, **extra))
        assert (await peer.recv()).type == "session.updated"
        yield peer
        assert not [e for e in peer.received if e.type == "error"], "unexpected error events"


def transcript_of(item: Any) -> str | None:
    return item.content[0].transcript  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- the SDK clients


async def test_vad_turn_transcription_and_tool_round_trip(
    start_realtime_server: StartServer, dialect: Dialect
) -> None:
    async with (
        start_realtime_server(**SERVER) as server,
        sdk_peer(server, dialect, VAD, tools=[TOOL]) as peer,
    ):
        await peer.append(pcm_tone(600) + pcm_silence(600))
        turn = await peer.until("response.function_call_arguments.done")
        types = [e.type for e in turn]
        user_item = turn[types.index("input_audio_buffer.committed")].item_id
        transcript = "conversation.item.input_audio_transcription"
        assert types.index(f"{transcript}.delta") < types.index(f"{transcript}.completed")
        completed = turn[types.index(f"{transcript}.completed")]
        added = turn[types.index(ITEM_ADDED[dialect])].item
        assert added.id == user_item and transcript_of(added) is None  # not yet transcribed
        assert completed.item_id == user_item and completed.transcript
        if dialect == "ga":  # gpt-4o-transcribe: tokens, as the cloud reports it
            assert completed.usage.type == "tokens" and completed.usage.total_tokens > 0
        else:  # whisper-1: duration
            assert completed.usage.type == "duration" and completed.usage.seconds > 0
        deltas = "".join(e.delta for e in turn if e.type == f"{transcript}.delta")
        assert deltas == completed.transcript
        call = turn[-1]
        assert (call.name, orjson.loads(call.arguments)) == ("get_weather", {"city": "Oslo"})
        await peer.until("response.done")

        await peer.conn.conversation.item.create(item={
            "type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 4}',
        })
        await peer.conn.response.create()
        reply = await peer.until("response.done")
        assert reply[-1].response.status == "completed"
        assert any(e.type == AUDIO_DELTA[dialect] for e in reply)
        assert "temp_c" in transcript_of(reply[-1].response.output[0])

        await peer.conn.conversation.item.retrieve(item_id=user_item, event_id="r1")
        retrieved = await peer.until("conversation.item.retrieved")
        assert retrieved[-1].item.id == user_item
        assert transcript_of(retrieved[-1].item) == completed.transcript


async def test_manual_commit_then_truncate_mid_reply(
    start_realtime_server: StartServer, dialect: Dialect
) -> None:
    async with (
        start_realtime_server(speed=1.0, reply_ms=5000) as server,
        sdk_peer(server, dialect, None) as peer,
    ):
        await peer.append(pcm_tone(500))
        await peer.conn.input_audio_buffer.commit()
        committed = await peer.until("conversation.item.input_audio_transcription.completed")
        assert committed[-1].transcript == "(0.5 seconds of audio)"
        await peer.conn.response.create()
        first = await peer.until(AUDIO_DELTA[dialect])
        item_id = first[-1].item_id
        # the reply still streams: truncating it also ends the response at the cut
        await peer.conn.conversation.item.truncate(
            item_id=item_id, content_index=0, audio_end_ms=40, event_id="t1"
        )
        rest = await peer.until("response.done")
        truncated = next(e for e in rest if e.type == "conversation.item.truncated")
        assert (truncated.item_id, truncated.audio_end_ms) == (item_id, 40)
        after = rest[rest.index(truncated) :]
        assert AUDIO_DELTA[dialect] not in [e.type for e in after]
        assert rest[-1].response.status == "cancelled"
        # truncating removes the server-side transcript of the audio cut off
        for event in after:
            if event.type in ("response.output_item.done", "conversation.item.done"):
                assert not transcript_of(event.item)
        assert not transcript_of(rest[-1].response.output[0])

        await peer.conn.conversation.item.retrieve(item_id=item_id)
        retrieved = (await peer.until("conversation.item.retrieved"))[-1]
        assert retrieved.item.id == item_id and retrieved.item.status == "incomplete"
        assert retrieved.item.content[0].type == AUDIO_PART[dialect]
        assert not transcript_of(retrieved.item)


async def test_text_items_cancel_delete_and_what_is_not_implemented(
    start_realtime_server: StartServer, dialect: Dialect
) -> None:
    async with (
        start_realtime_server(speed=1.0, reply_ms=5000) as server,
        sdk_peer(server, dialect, None) as peer,
    ):
        conn = peer.conn
        await conn.conversation.item.create(item={
            "type": "message", "role": "system",
            "content": [{"type": "input_text", "text": "Be brief."}],
        })
        system = (await peer.until(ITEM_ADDED[dialect]))[-1].item
        await conn.conversation.item.create(item={
            "type": "message", "role": "assistant",
            "content": [{"type": TEXT_PART[dialect], "text": "Hello there."}],
        })
        assistant = (await peer.until(ITEM_ADDED[dialect]))[-1]
        assert assistant.previous_item_id == system.id
        assert assistant.item.role == "assistant"
        assert assistant.item.content[0].text == "Hello there."
        await conn.conversation.item.truncate(  # a text item has no audio to truncate
            item_id=assistant.item.id, content_index=0, audio_end_ms=0, event_id="t2"
        )
        error = (await peer.until("error"))[-1].error
        assert (error.param, error.event_id) == ("item_id", "t2")
        peer.received.pop()  # that error was the point
        await conn.conversation.item.create(item={
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}],
        })
        await peer.until(ITEM_ADDED[dialect])
        await conn.response.create()
        await peer.until(AUDIO_DELTA[dialect])
        await conn.response.cancel()
        done = (await peer.until("response.done"))[-1]
        assert done.response.status == "cancelled"

        await conn.conversation.item.delete(item_id=assistant.item.id, event_id="d1")
        deleted = (await peer.until("conversation.item.deleted"))[-1]
        assert deleted.item_id == assistant.item.id
        peer.received.clear()  # the errors below are the point
        await conn.conversation.item.retrieve(item_id=assistant.item.id, event_id="r2")
        error = (await peer.until("error"))[-1].error
        assert (error.param, error.event_id) == ("item_id", "r2")
        await conn.send({"type": "output_audio_buffer.clear", "event_id": "o1"})
        error = (await peer.until("error"))[-1].error
        assert "not implemented by pivox serve" in error.message
        assert (error.param, error.event_id) == ("type", "o1")
        modalities = "output_modalities" if dialect == "ga" else "modalities"
        for response, param in (
            ({modalities: ["text"]}, f"response.{modalities}"),
            ({"conversation": "none"}, "response.conversation"),
        ):
            await conn.response.create(response=response, event_id="p1")  # type: ignore[arg-type]
            error = (await peer.until("error"))[-1].error
            assert "not implemented by pivox serve" in error.message
            assert (error.param, error.event_id) == (param, "p1")
        g711 = (
            ({"type": "realtime", "audio": {"output": {"format": {"type": "audio/pcmu"}}}},
             "session.audio.output.format.type")
            if dialect == "ga" else ({"output_audio_format": "g711_ulaw"},
                                     "session.output_audio_format")
        )
        text_only = (
            {**({"type": "realtime"} if dialect == "ga" else {}), modalities: ["text"]},
            f"session.{modalities}",
        )
        for update, param in (g711, text_only):
            await conn.session.update(session=update, event_id="s1")  # type: ignore[arg-type]
            error = (await peer.until("error"))[-1].error
            assert "not implemented by pivox serve" in error.message
            assert (error.param, error.event_id) == (param, "s1")
        peer.received.clear()


async def test_session_shapes_barge_in_clear_and_client_built_items(
    start_realtime_server: StartServer, dialect: Dialect
) -> None:
    async with (
        start_realtime_server(speed=4.0, reply_ms=5000) as server,
        sdk_peer(server, dialect, {"type": "semantic_vad", "eagerness": "high"}, tools=[TOOL],
                 instructions="Be brief.", tool_choice="required") as peer,
    ):
        conn = peer.conn
        await conn.session.update(session=session(dialect, VAD))
        await peer.until("session.updated")
        await peer.append(pcm_tone(300) + pcm_silence(600))
        await peer.until(AUDIO_DELTA[dialect])
        await peer.append(pcm_tone(200))  # the user speaks over the reply
        done = (await peer.until("response.done"))[-1].response
        assert (done.status, done.status_details.reason) == ("cancelled", "turn_detected")
        await conn.input_audio_buffer.clear()
        await peer.until("input_audio_buffer.cleared")

        await conn.session.update(session=session(dialect, None))
        await peer.until("session.updated")
        audio = base64.b64encode(pcm_tone(200)).decode()
        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_audio", "audio": audio, "transcript": "hello"},
                        {"type": "input_text", "text": "and more"}],
        })
        user = (await peer.until(ITEM_ADDED[dialect]))[-1].item
        assert [part.type for part in user.content] == ["input_audio", "input_text"]
        await conn.conversation.item.create(item={
            "type": "function_call", "call_id": "call_mine", "name": "get_weather",
            "arguments": '{"city": "Oslo"}',
        })
        await peer.until(ITEM_ADDED[dialect])
        await conn.conversation.item.create(item={
            "type": "function_call_output", "call_id": "call_mine", "output": "4 degrees",
        })
        await peer.until(ITEM_ADDED[dialect])
        await conn.response.create()
        reply = await peer.until("response.done")
        assert "4 degrees" in transcript_of(reply[-1].response.output[0])


# --------------------------------------------------------------------------- openai-agents


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"4 degrees in {city}"


@pytest.fixture
def no_tracing() -> Iterator[None]:
    """The runner would export traces to the cloud: never from a test."""
    set_tracing_disabled(True)
    yield
    set_tracing_disabled(False)


async def test_agents_realtime_runner_session_has_no_error(
    start_realtime_server: StartServer, no_tracing: None
) -> None:
    """Audio in, a tool call, the spoken answer, interrupt(): not one error event."""
    # speed 0: the reply arrives whole long before it has played, as from the cloud, so no
    # delta is in flight when interrupt() truncates it (one in flight would make the runner
    # truncate the same item again later, further than the first cut: an error, rightly)
    async with start_realtime_server(speed=0.0, reply_ms=3000, **SERVER) as server:
        agent = RealtimeAgent(name="pivox", instructions="Answer briefly.", tools=[get_weather])
        runner = RealtimeRunner(agent)
        session = await runner.run(model_config={"url": server.url, "api_key": "sk-test"})
        seen: list[str] = []
        raw: list[dict[str, Any]] = []  # every server event, as the runner got it
        history: list[Any] = []  # the agent's history, as its last history_updated gave it
        async with session:

            async def until(*wanted: str) -> None:
                async for event in session:
                    seen.append(event.type)
                    if event.type == "raw_model_event" and event.data.type == "raw_server_event":
                        raw.append(event.data.data)
                    if event.type == "history_updated":
                        history[:] = event.history
                    if event.type in wanted or (
                        raw and event.type == "raw_model_event" and raw[-1]["type"] in wanted
                    ):
                        return

            async def say(ms: int) -> None:
                pcm = pcm_tone(ms) + pcm_silence(600)
                for offset in range(0, len(pcm), 4800):
                    await session.send_audio(pcm[offset : offset + 4800])

            await say(600)
            await asyncio.wait_for(until("tool_end"), 10)
            await asyncio.wait_for(until("audio"), 10)  # the spoken answer plays
            await asyncio.wait_for(until("response.done"), 10)  # all of it has arrived
            await session.interrupt()
            await asyncio.wait_for(until("conversation.item.retrieved"), 10)
            # a second turn: after its transcript the runner retrieves the cut reply again
            await say(1200)
            await asyncio.wait_for(until(_TRANSCRIBED), 10)
            await asyncio.wait_for(until("conversation.item.retrieved"), 10)
            await asyncio.wait_for(until("agent_end"), 10)

    assert "error" not in seen, [e for e in raw if e["type"] == "error"]
    assert not [e for e in raw if e["type"] == "error"]
    assert {"tool_start", "tool_end", "audio", "audio_interrupted"} <= set(seen)
    types = [e["type"] for e in raw]
    assert "conversation.item.truncated" in types
    cut = [e["item"] for e in raw if e["type"] == "conversation.item.retrieved"]
    assert len(cut) == 2 and cut[0] == cut[1] and cut[0]["content"][0]["transcript"] == ""
    completed = [e for e in raw if e["type"] == _TRANSCRIBED]
    users = [i for i in history if i.type == "message" and i.role == "user"]
    assert [u.item_id for u in users] == [c["item_id"] for c in completed]
    assert [u.content[0].transcript for u in users] == [c["transcript"] for c in completed]
    assert completed[0]["transcript"] != completed[1]["transcript"]


async def test_an_out_of_band_response_speaks_its_input_outside_the_conversation(
    start_realtime_server: StartServer, dialect: Dialect
) -> None:
    """As the Realtime docs describe `conversation: "none"`: metadata echoed, no
    conversation id, no conversation item, and server VAD does not cancel it."""
    modalities = "output_modalities" if dialect == "ga" else "modalities"
    response = {
        "conversation": "none", "instructions": "Say it verbatim.",
        "input": [{"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": "Front door opened"}]}],
        "metadata": {"pivox": "announcement"},
        modalities: ["audio"] if dialect == "ga" else ["audio", "text"],
    }
    async with (
        start_realtime_server(speed=1.0) as server,
        sdk_peer(server, dialect, VAD) as peer,
    ):
        await peer.conn.response.create(response=response)
        created = (await peer.until("response.created"))[-1]
        assert created.response.metadata == {"pivox": "announcement"}
        assert created.response.conversation_id is None
        await peer.append(pcm_tone(500))  # the user talks over it: no cancel by the server
        events = await peer.until("response.done")
        types = [e.type for e in events]
        assert ITEM_ADDED[dialect] not in types and "conversation.item.done" not in types
        assert "response.output_audio.delta" in types or "response.audio.delta" in types
        done = events[-1].response
        assert done.status == "completed" and done.metadata == {"pivox": "announcement"}
        transcript = done.output[0].content[0].transcript
        assert transcript == "Front door opened"
