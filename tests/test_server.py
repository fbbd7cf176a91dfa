"""The bundled realtime server over real loopback websockets, GA and beta, from the client side.

Every frame a `WireClient` receives must decode into pivox's unified events (no ProtocolError,
Unknown only where the model keeps it by design), so each test also checks the codec.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pivox.core.errors import ProtocolError
from pivox.core.events import Unknown
from pivox.protocol.openai import decode_server_event
from pivox.server import Fault, RealtimeServer, ServerOptions, ramp_position
from pivox.server.command import build_parser
from tests.fixtures_server import StartServer, WireClient, pcm_silence, pcm_tone, wire_client

DIALECTS = ["ga", "beta"]
NAMES = {
    "ga": {
        "audio": "response.output_audio.delta",
        "audio_done": "response.output_audio.done",
        "transcript": "response.output_audio_transcript.delta",
        "transcript_done": "response.output_audio_transcript.done",
        "item": "conversation.item.added",
    },
    "beta": {
        "audio": "response.audio.delta",
        "audio_done": "response.audio.done",
        "transcript": "response.audio_transcript.delta",
        "transcript_done": "response.audio_transcript.done",
        "item": "conversation.item.created",
    },
}


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def session(dialect: str, turn_detection: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """A `session.update` payload in the dialect's shape."""
    if dialect == "ga":
        return {"type": "realtime", "audio": {"input": {"turn_detection": turn_detection}}, **extra}
    return {"turn_detection": turn_detection, **extra}


@asynccontextmanager
async def session_client(
    server: RealtimeServer,
    dialect: str,
    turn_detection: dict[str, Any] | None = None,
    **extra: Any,
) -> AsyncIterator[WireClient]:
    """Connect, read `session.created`, send a session.update, read `session.updated`."""
    async with wire_client(server.url, beta=dialect == "beta") as client:
        assert (await client.recv())["type"] == "session.created"
        await client.send("session.update", session=session(dialect, turn_detection, **extra))
        assert (await client.recv())["type"] == "session.updated"
        yield client


def check_response_shape(types: list[str], dialect: str) -> None:
    """The cloud's order of a spoken response; deltas all between the part added and done."""
    names = NAMES[dialect]
    deltas = (names["transcript"], names["audio"])
    done = ["conversation.item.done"] if dialect == "ga" else []
    assert [t for t in types if t not in deltas] == [
        "response.created",
        "response.output_item.added",
        names["item"],
        "response.content_part.added",
        names["audio_done"],
        names["transcript_done"],
        "response.content_part.done",
        "response.output_item.done",
        *done,
        "response.done",
        "rate_limits.updated",
    ]
    first, last = types.index("response.content_part.added"), types.index(names["audio_done"])
    assert {t for t in types[first + 1 : last]} == set(deltas)


def audio_of(frames: list[dict[str, Any]], dialect: str) -> bytes:
    return b"".join(
        base64.b64decode(f["delta"]) for f in frames if f["type"] == NAMES[dialect]["audio"]
    )


# --------------------------------------------------------------------------- handshake


async def test_session_created_in_the_dialects_shape(
    realtime_server: RealtimeServer, dialect: str
) -> None:
    # beta: a model the beta SDK's session model lists (its `model` is a Literal there)
    model = "my-model" if dialect == "ga" else "gpt-4o-mini-realtime-preview"
    url = realtime_server.url + f"?model={model}&unknown=1"
    async with wire_client(url, beta=dialect == "beta") as client:
        created = await client.recv()
    assert created["type"] == "session.created"
    assert created["session"]["model"] == model
    if dialect == "ga":
        assert created["session"]["type"] == "realtime"
        assert created["session"]["audio"]["output"]["format"] == {
            "type": "audio/pcm",
            "rate": 24000,
        }
    else:
        assert created["session"]["input_audio_format"] == "pcm16"
        assert "type" not in created["session"]
    assert realtime_server.connections[0].dialect == dialect


async def test_wrong_or_missing_key_fails_the_handshake_with_401(
    start_realtime_server: StartServer,
) -> None:
    async with start_realtime_server(api_key="sk-right") as server:
        for key in ("sk-wrong", None):
            with pytest.raises(InvalidStatus) as caught:
                async with wire_client(server.url, key=key):
                    pass
            response = caught.value.response
            assert response.status_code == 401
            assert orjson.loads(response.body)["error"]["code"] == "invalid_api_key"
        async with wire_client(server.url, key="sk-right") as client:
            assert (await client.recv())["type"] == "session.created"
        assert len(server.connections) == 1


async def test_unknown_path_and_bad_fault_spec_are_refused(
    realtime_server: RealtimeServer,
) -> None:
    for url, status in (
        (realtime_server.url.replace("/v1/realtime", "/v2/x"), 404),
        (realtime_server.url + "?fault=explode", 400),
    ):
        with pytest.raises(InvalidStatus) as caught:
            async with wire_client(url):
                pass
        assert caught.value.response.status_code == status


# --------------------------------------------------------------------------- session.update


async def test_session_update_merges_named_fields(
    realtime_server: RealtimeServer, dialect: str
) -> None:
    async with session_client(realtime_server, dialect, None, instructions="be brief") as client:
        await client.send(
            "session.update",
            session=session(dialect, {"type": "server_vad"}) | {"instructions": "be brief"},
        )
        updated = (await client.recv())["session"]
        await client.send(
            "session.update",
            event_id="e2",
            session={"type": "realtime"} if dialect == "ga" else {"voice": "ash"},
        )
        again = (await client.recv())["session"]
        turn = (
            again["audio"]["input"]["turn_detection"]
            if dialect == "ga"
            else again["turn_detection"]
        )
        assert updated["instructions"] == again["instructions"] == "be brief"
        assert turn["type"] == "server_vad"


@pytest.mark.parametrize(
    ("payload", "code", "param"),
    [
        (
            {"turn_detection": {"type": "server_vad", "threshold": 1.5}},
            "decimal_above_max_value",
            "turn_detection.threshold",
        ),
        (
            {"turn_detection": {"type": "server_vad", "silence_duration_ms": -5}},
            "integer_below_min_value",
            "turn_detection.silence_duration_ms",
        ),
        (
            {"turn_detection": {"type": "server_vad", "prefix_padding_ms": "x"}},
            "invalid_type",
            "turn_detection.prefix_padding_ms",
        ),
        ({"turn_detection": {"type": "mind_reading"}}, "invalid_value", "turn_detection.type"),
    ],
)
async def test_bad_session_update_gets_an_error_naming_param_and_event_id(
    realtime_server: RealtimeServer,
    dialect: str,
    payload: dict[str, Any],
    code: str,
    param: str,
) -> None:
    async with session_client(realtime_server, dialect, None) as client:
        await client.send(
            "session.update",
            event_id="evt_bad",
            session=session(dialect, payload["turn_detection"]),
        )
        error = (await client.recv())["error"]
        prefix = "session.audio.input." if dialect == "ga" else "session."
        assert (error["type"], error["code"], error.get("param"), error["event_id"]) == (
            "invalid_request_error",
            code,
            prefix + param,
            "evt_bad",
        )
        assert error["message"]


async def test_session_shape_of_the_other_dialect_is_refused(
    realtime_server: RealtimeServer, dialect: str
) -> None:
    async with session_client(realtime_server, dialect, None) as client:
        other = {"turn_detection": None} if dialect == "ga" else {"type": "realtime"}
        await client.send("session.update", event_id="e9", session=other)
        error = (await client.recv())["error"]
        expected = (
            ("missing_required_parameter", "session.type")
            if dialect == "ga"
            else ("unknown_parameter", "session.type")
        )
        assert (error["code"], error["param"], error["event_id"]) == (*expected, "e9")


async def test_bad_client_events_get_errors_and_the_session_goes_on(
    realtime_server: RealtimeServer, dialect: str
) -> None:
    async with session_client(realtime_server, dialect, None) as client:
        await client.ws.send("{not json")
        await client.send("response.dance", event_id="e1")
        await client.send("input_audio_buffer.append", event_id="e2", audio="@@not base64@@")
        await client.send(
            "conversation.item.truncate",
            event_id="e3",
            item_id="nope",
            content_index=0,
            audio_end_ms=10,
        )
        errors = [(await client.recv())["error"] for _ in range(4)]
        assert [e["code"] for e in errors] == [
            "invalid_json",
            "invalid_value",
            "invalid_value",
            "invalid_value",
        ]
        assert [e.get("event_id") for e in errors] == [None, "e1", "e2", "e3"]
        assert errors[1]["param"] == "type"
        await client.send("input_audio_buffer.clear")
        assert (await client.recv())["type"] == "input_audio_buffer.cleared"
        record = realtime_server.connections[0]
        assert sum(isinstance(e, ProtocolError) for _, e in record.received) == 3


# --------------------------------------------------------------------------- push-to-talk


async def test_push_to_talk_turn_streams_the_full_response(
    realtime_server: RealtimeServer, dialect: str
) -> None:
    async with session_client(realtime_server, dialect, None) as client:
        await client.append(pcm_tone(1200) + pcm_silence(1200))  # loud, but VAD is off
        await client.send("input_audio_buffer.commit", event_id="c1")
        committed = await client.recv()  # nothing came before the commit's answer
        assert committed["type"] == "input_audio_buffer.committed"
        item = await client.recv()
        assert item["type"] == NAMES[dialect]["item"]
        assert item["item"]["id"] == committed["item_id"]
        if dialect == "ga":
            assert (await client.recv())["type"] == "conversation.item.done"
        await client.send("response.create")
        frames = await client.recv_until("rate_limits.updated")
        check_response_shape([f["type"] for f in frames], dialect)
        audio = audio_of(frames, dialect)
        assert len(audio) == 600 * 48  # reply_ms of the test server
        assert ramp_position(int.from_bytes(audio[-2:], "little")) == 14392
        transcript = next(f for f in frames if f["type"] == NAMES[dialect]["transcript_done"])
        assert transcript["transcript"] == "I heard 2.4 seconds of audio"
        done = next(f for f in frames if f["type"] == "response.done")["response"]
        assert done["status"] == "completed"
        assert done["usage"]["output_token_details"]["audio_tokens"] == 12
        assert done["output"][0]["role"] == "assistant"


async def test_commit_of_too_little_audio_and_clear(
    realtime_server: RealtimeServer, dialect: str
) -> None:
    async with session_client(realtime_server, dialect, None) as client:
        await client.append(pcm_tone(50))
        await client.send("input_audio_buffer.commit", event_id="c1")
        error = (await client.recv())["error"]
        assert (error["code"], error["event_id"]) == ("input_audio_buffer_commit_empty", "c1")
        await client.append(pcm_tone(500))
        await client.send("input_audio_buffer.clear")
        assert (await client.recv())["type"] == "input_audio_buffer.cleared"
        await client.send("input_audio_buffer.commit")
        assert (await client.recv())["error"]["code"] == "input_audio_buffer_commit_empty"


async def test_text_input_gets_a_spoken_answer(
    realtime_server: RealtimeServer, dialect: str
) -> None:
    async with session_client(realtime_server, dialect, None) as client:
        await client.send(
            "conversation.item.create",
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            },
        )
        await client.send("response.create")
        frames = await client.recv_until("rate_limits.updated")
        transcript = next(f for f in frames if f["type"] == NAMES[dialect]["transcript_done"])
        assert transcript["transcript"] == "You said: hi"


# --------------------------------------------------------------------------- server VAD

VAD = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}


async def test_server_vad_turn_times_and_sequence(
    realtime_server: RealtimeServer, dialect: str
) -> None:
    async with session_client(realtime_server, dialect, VAD) as client:
        await client.append(pcm_silence(1000) + pcm_tone(800) + pcm_silence(1000), chunk_ms=60)
        frames = await client.recv_until("rate_limits.updated")
        started, stopped, committed = frames[0], frames[1], frames[2]
        assert (started["type"], started["audio_start_ms"]) == (
            "input_audio_buffer.speech_started",
            700,
        )
        assert (stopped["type"], stopped["audio_end_ms"]) == (
            "input_audio_buffer.speech_stopped",
            2300,
        )
        assert committed["type"] == "input_audio_buffer.committed"
        assert started["item_id"] == stopped["item_id"] == committed["item_id"]
        assert frames[3]["type"] == NAMES[dialect]["item"]
        assert "response.created" in [f["type"] for f in frames]
        transcript = next(f for f in frames if f["type"] == NAMES[dialect]["transcript_done"])
        assert transcript["transcript"] == "I heard 1.6 seconds of audio"  # 700 to 2300 ms
        # the second turn's times count from the start of the session's input audio
        await client.append(pcm_tone(400) + pcm_silence(600), chunk_ms=60)
        frames = await client.recv_until("input_audio_buffer.speech_stopped")
        assert [f.get("audio_start_ms", f.get("audio_end_ms")) for f in frames] == [2500, 3700]


async def test_vad_without_create_response_only_commits(
    realtime_server: RealtimeServer, dialect: str
) -> None:
    async with session_client(realtime_server, dialect, VAD | {"create_response": False}) as client:
        await client.append(pcm_tone(300) + pcm_silence(600))
        await client.recv_until("input_audio_buffer.committed")
        await client.send("input_audio_buffer.clear")  # a marker: what came before it
        frames = await client.recv_until("input_audio_buffer.cleared")
        assert "response.created" not in [f["type"] for f in frames]


async def test_speech_during_a_response_interrupts_it(
    start_realtime_server: StartServer, dialect: str
) -> None:
    async with (
        start_realtime_server(speed=1.0, reply_ms=10_000) as server,
        session_client(server, dialect, VAD) as client,
    ):
        await client.append(pcm_tone(300) + pcm_silence(600))
        await client.recv_until(NAMES[dialect]["audio"])
        await client.append(pcm_tone(200))
        frames = await client.recv_until("response.done")
        types = [f["type"] for f in frames]
        assert "input_audio_buffer.speech_started" in types
        assert types.index("input_audio_buffer.speech_started") < types.index("response.done")
        done = frames[-1]["response"]
        assert (done["status"], done["status_details"]["reason"]) == ("cancelled", "turn_detected")
        assert (await client.recv())["type"] == "rate_limits.updated"
        await client.append(pcm_silence(600))
        after = await client.recv_until("response.created")
        assert NAMES[dialect]["audio"] not in [f["type"] for f in after]


# --------------------------------------------------------------------------- cancel, truncate


async def test_cancel_ends_the_response_and_truncate_is_bounded_by_audio_sent(
    start_realtime_server: StartServer, dialect: str
) -> None:
    async with (
        start_realtime_server(speed=1.0, reply_ms=10_000) as server,
        session_client(server, dialect, None) as client,
    ):
        await client.send("response.create")
        first = await client.recv_until(NAMES[dialect]["audio"])
        item_id = first[-1]["item_id"]
        await client.send("response.cancel", event_id="x1")
        rest = await client.recv_until("rate_limits.updated")
        done = next(f for f in rest if f["type"] == "response.done")["response"]
        assert (done["status"], done["status_details"]["reason"]) == (
            "cancelled",
            "client_cancelled",
        )
        after_done = [
            f["type"]
            for f in rest[rest.index(next(f for f in rest if f["type"] == "response.done")) :]
        ]
        assert NAMES[dialect]["audio"] not in after_done
        sent_ms = len(audio_of(first + rest, dialect)) // 48
        assert 100 <= sent_ms < 10_000
        await client.send("response.cancel", event_id="x2")
        error = (await client.recv())["error"]
        assert (error["code"], error["event_id"]) == ("response_cancel_not_active", "x2")
        await client.send(
            "conversation.item.truncate",
            event_id="t1",
            item_id=item_id,
            content_index=0,
            audio_end_ms=sent_ms,
        )
        truncated = await client.recv()
        assert truncated == truncated | {
            "type": "conversation.item.truncated",
            "item_id": item_id,
            "audio_end_ms": sent_ms,
        }
        await client.send(
            "conversation.item.truncate",
            event_id="t2",
            item_id=item_id,
            content_index=0,
            audio_end_ms=sent_ms + 1,
        )
        error = (await client.recv())["error"]
        assert error == {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "param": "audio_end_ms",
            "event_id": "t2",
            "message": f"Audio content of {sent_ms}ms is already shorter than {sent_ms + 1}ms",
        }


async def test_second_response_while_one_streams_is_refused(
    start_realtime_server: StartServer, dialect: str
) -> None:
    async with (
        start_realtime_server(speed=1.0, reply_ms=10_000) as server,
        session_client(server, dialect, None) as client,
    ):
        await client.send("response.create")
        await client.recv_until(NAMES[dialect]["audio"])
        await client.send("response.create", event_id="r2")
        frames = await client.recv_until("error")
        assert frames[-1]["error"]["code"] == "conversation_already_has_active_response"


async def test_truncate_of_a_user_item_is_refused(
    realtime_server: RealtimeServer, dialect: str
) -> None:
    async with session_client(realtime_server, dialect, None) as client:
        await client.append(pcm_tone(200))
        await client.send("input_audio_buffer.commit")
        committed = await client.recv()
        await client.send(
            "conversation.item.truncate",
            item_id=committed["item_id"],
            content_index=0,
            audio_end_ms=0,
        )
        error = (await client.recv_until("error"))[-1]["error"]
        assert error["message"] == "Only model output audio messages can be truncated"


# --------------------------------------------------------------------------- function calls

TOOL = {
    "type": "function",
    "name": "get_time",
    "description": "the time",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
}


async def test_tool_call_then_spoken_answer(
    start_realtime_server: StartServer, dialect: str
) -> None:
    async with (
        start_realtime_server(tool_call="get_time", tool_arguments='{"zone": "UTC"}') as server,
        session_client(server, dialect, None, tools=[TOOL]) as client,
    ):
        await client.send("response.create")
        frames = await client.recv_until("rate_limits.updated")
        types = [f["type"] for f in frames]
        assert NAMES[dialect]["audio"] not in types
        deltas = [
            f["delta"] for f in frames if f["type"] == "response.function_call_arguments.delta"
        ]
        call = next(f for f in frames if f["type"] == "response.function_call_arguments.done")
        assert "".join(deltas) == call["arguments"] == '{"zone": "UTC"}'
        assert call["name"] == "get_time"
        await client.send(
            "conversation.item.create",
            item={"type": "function_call_output", "call_id": call["call_id"], "output": "noon"},
        )
        await client.send("response.create")
        frames = await client.recv_until("rate_limits.updated")
        transcript = next(f for f in frames if f["type"] == NAMES[dialect]["transcript_done"])
        assert transcript["transcript"] == "The get_time tool said: noon"
        await client.send(
            "conversation.item.create",
            event_id="o2",
            item={"type": "function_call_output", "call_id": "call_bogus", "output": "x"},
        )
        assert (await client.recv())["error"]["param"] == "item.call_id"


async def test_no_tool_call_when_the_session_does_not_declare_it(
    start_realtime_server: StartServer,
) -> None:
    async with (
        start_realtime_server(tool_call="get_time") as server,
        session_client(server, "ga", None) as client,
    ):
        await client.send("response.create")
        frames = await client.recv_until("rate_limits.updated")
        assert "response.function_call_arguments.done" not in [f["type"] for f in frames]


# --------------------------------------------------------------------------- faults


async def receive_until_closed(client: WireClient) -> tuple[list[str], ConnectionClosed]:
    types: list[str] = []
    try:
        while True:
            types.append((await client.recv())["type"])
    except ConnectionClosed as closed:
        return types, closed


async def ptt_response(client: WireClient) -> None:
    await client.send("session.update", session=session("ga", None))
    await client.send("response.create")


@pytest.mark.parametrize("code", [1000, 1008, 1011])
async def test_close_after_n_events(realtime_server: RealtimeServer, code: int) -> None:
    async with wire_client(f"{realtime_server.url}?fault=close:{code}:after=5") as client:
        await ptt_response(client)
        types, closed = await receive_until_closed(client)
    assert types == [
        "session.created",
        "session.updated",
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
    ]
    assert closed.rcvd is not None and closed.rcvd.code == code
    await realtime_server.connections[0].closed.wait()
    assert realtime_server.connections[0].close_code == code


async def test_drop_mid_response_sends_no_close_frame(realtime_server: RealtimeServer) -> None:
    async with wire_client(f"{realtime_server.url}?fault=drop:deltas=2") as client:
        await ptt_response(client)
        types, closed = await receive_until_closed(client)
    assert types.count("response.output_audio.delta") == 2
    assert types[-1] == "response.output_audio.delta"
    assert closed.rcvd is None  # TCP gone: abnormal closure, 1006


async def test_stall_sends_nothing_while_it_lasts(start_realtime_server: StartServer) -> None:
    async with start_realtime_server() as server:
        server.inject(Fault(kind="stall", seconds=60, after=1))
        async with wire_client(server.url) as client:
            assert (await client.recv())["type"] == "session.created"
            await client.send("input_audio_buffer.clear")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.recv(), 0.3)
        await server.connections[0].closed.wait()  # the stall ends with the client
        assert [type(e).__name__ for _, e in server.connections[0].received] == ["InputAudioClear"]
        async with wire_client(f"{server.url}?fault=stall:0.05") as client:
            assert (await client.recv())["type"] == "session.created"


async def test_injected_frames_reach_the_client_as_documented(
    realtime_server: RealtimeServer, dialect: str
) -> None:
    faults = "malformed:deltas=1,bad_base64:deltas=1,unknown:deltas=1,oversized:5000:deltas=1"
    url = f"{realtime_server.url}?fault={faults}"
    async with wire_client(url, beta=dialect == "beta") as client:
        client.strict = False
        await client.send("session.update", session=session(dialect, None))
        await client.send("response.create")
        await client.recv_until(NAMES[dialect]["audio"])
        raw = [await client.recv_raw() for _ in range(4)]
        decoded = [decode_server_event(frame) for frame in raw]
        assert isinstance(decoded[0], ProtocolError)
        assert isinstance(decoded[1], ProtocolError)
        assert decoded[1].event_type == NAMES[dialect]["audio"]
        assert isinstance(decoded[2], Unknown) and decoded[2].type == "pivox.fault.unknown"
        assert isinstance(decoded[3], Unknown) and len(raw[3]) == 5000
        client.strict = True
        await client.recv_until("rate_limits.updated")  # the response goes on


async def test_oversized_frame_exceeds_the_default_client_limit(
    realtime_server: RealtimeServer,
) -> None:
    async with wire_client(f"{realtime_server.url}?fault=oversized:after=1") as client:
        types, closed = await receive_until_closed(client)
    assert types == ["session.created"]
    assert closed.sent is not None and closed.sent.code == 1009  # message too big


async def test_stale_deltas_follow_a_cancel(start_realtime_server: StartServer) -> None:
    async with start_realtime_server(speed=1.0, reply_ms=10_000) as server:
        async with wire_client(f"{server.url}?fault=stale:2") as client:
            await ptt_response(client)
            first = await client.recv_until("response.output_audio.delta")
            await client.send("response.cancel")
            rest = await client.recv_until("response.done")
        response_id = first[-1]["response_id"]
        stale = [f for f in rest if f["type"] == "response.output_audio.delta"]
        assert len(stale) >= 2 and {f["response_id"] for f in stale} == {response_id}
        assert rest[-1]["response"]["status"] == "cancelled"


async def test_auth_fault_sends_invalid_api_key_and_closes_1008(
    realtime_server: RealtimeServer,
) -> None:
    realtime_server.inject(Fault(kind="auth"))
    async with wire_client(realtime_server.url) as client:
        types, closed = await receive_until_closed(client)
        assert client.events[0].error.code == "invalid_api_key"  # type: ignore[union-attr]
    assert types == ["error"] and closed.rcvd is not None and closed.rcvd.code == 1008
    async with wire_client(realtime_server.url) as client:  # injected: next connection only
        assert (await client.recv())["type"] == "session.created"


# --------------------------------------------------------------------------- standalone


def test_every_option_but_the_limits_is_a_flag() -> None:
    # --provider and --go-away-s pick the server class and its goAway, not an option
    flags = {action.dest for action in build_parser()._actions} - {
        "help", "verbose", "provider", "go_away_s"}
    fields = {f.name for f in dataclasses.fields(ServerOptions)}
    limits = {"record_bytes", "records_total_bytes", "max_frame_bytes"}
    assert flags == fields - limits - {"faults"} | {"fault"}


def test_pivox_serve_runs_standalone() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pivox.server", "--port", "0", "--reply", "tones"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PIVOX_SERVER_API_KEY": "k"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("pivox serve: listening on ws://127.0.0.1:")
        url = line.split()[-1]

        async def talk() -> dict[str, Any]:
            async with wire_client(url, key="k") as client:
                return await client.recv()

        assert asyncio.run(talk())["type"] == "session.created"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
