"""Fault specs of the local server: parsing, query strings, when each fires."""

from __future__ import annotations

import asyncio

import pytest

from pivox.core.errors import ProtocolError
from pivox.core.events import Error
from pivox.protocol.openai import decode_server_event
from pivox.server import RealtimeServer
from pivox.server.faults import (
    ERROR_CLASSES,
    Fault,
    FaultPlan,
    faults_from_query,
    parse_fault,
)
from tests.fixtures_server import wire_client

CASES = [
    ("close:1011:after=40", Fault(kind="close", code=1011, after=40)),
    ("close:1000", Fault(kind="close", code=1000)),
    ("drop:deltas=3", Fault(kind="drop", deltas=3)),
    ("stall:2.5:after=1", Fault(kind="stall", seconds=2.5, after=1)),
    ("oversized:3000000", Fault(kind="oversized", size=3_000_000)),
    ("stale:2", Fault(kind="stale", count=2)),
    ("malformed", Fault(kind="malformed")),
    ("bad_base64:deltas=1", Fault(kind="bad_base64", deltas=1)),
    ("unknown:after=2", Fault(kind="unknown", after=2)),
    ("auth", Fault(kind="auth")),
    ("error", Fault(kind="error")),
    ("error:rate_limit:deltas=2", Fault(kind="error", error="rate_limit", deltas=2)),
    ("freeze:30:after=2", Fault(kind="freeze", seconds=30, after=2)),
]


@pytest.mark.parametrize(("spec", "fault"), CASES)
def test_parse(spec: str, fault: Fault) -> None:
    assert parse_fault(spec) == fault


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("explode", "fault kind 'explode': expected one of"),
        ("drop:5", "unexpected argument '5'"),
        ("close:1011:when=3", "unknown key 'when'"),
        ("close:abc", "expected numbers as values"),
        ("stall:-1", "seconds -1.0: expected 0 to 3600 seconds"),
        # a URL must not buy a hang, a MemoryError or gigabytes (issue 14, finding 8)
        ("stall:inf", "seconds inf: expected 0 to 3600 seconds"),
        ("freeze:nan", "seconds nan: expected 0 to 3600 seconds"),
        ("stall:1e400", "seconds inf"),
        ("oversized:1000000000", "size 1000000000: expected 0 to 67108864 bytes"),
        ("oversized:999999999999", "size 999999999999"),
        ("stale:99999999", "count 99999999: expected 0 to 10000 deltas"),
        ("close:5000", "close code 5000: expected 1000-1003, 1007-1014 or 3000-4999"),
        ("close:1005", "close code 1005"),
        ("error:teapot", "error class 'teapot': expected one of"),
    ],
)
def test_parse_rejects_with_reason(spec: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        parse_fault(spec)


def test_query_string_names_faults_and_ignores_the_rest() -> None:
    query = "model=gpt-realtime&fault=close:1008:after=3,stale:1&fault=drop&x=1"
    assert faults_from_query(query) == (
        Fault(kind="close", code=1008, after=3),
        Fault(kind="stale", count=1),
        Fault(kind="drop"),
    )
    assert faults_from_query("model=x") == ()


def test_plan_fires_each_fault_once_when_both_counts_are_reached() -> None:
    plan = FaultPlan([Fault(kind="close", after=2, deltas=1), Fault(kind="malformed")])
    assert plan.due() == [Fault(kind="malformed")]
    plan.note_sent(is_audio_delta=False)
    plan.note_sent(is_audio_delta=False)
    assert plan.due() == []
    plan.note_sent(is_audio_delta=True)
    assert plan.due() == [Fault(kind="close", after=2, deltas=1)]
    plan.note_sent(is_audio_delta=True)
    assert plan.due() == []


def test_stale_is_counted_not_fired() -> None:
    plan = FaultPlan([Fault(kind="stale", count=2), Fault(kind="stale", count=1)])
    assert plan.stale_count == 3
    assert plan.due() == []


@pytest.mark.parametrize("name", sorted(ERROR_CLASSES))
async def test_error_fault_sends_one_error_event_of_its_class(
    realtime_server: RealtimeServer, name: str
) -> None:
    async with wire_client(f"{realtime_server.url}?fault=error:{name}:after=1") as client:
        client.strict = False
        await client.recv()  # session.created
        event = decode_server_event(await client.recv_raw())
        assert not isinstance(event, ProtocolError)
        assert isinstance(event, Error)
        assert (event.error.type, event.error.code, event.error.message) == ERROR_CLASSES[name]
        await client.send("input_audio_buffer.clear")  # the session goes on
        await client.ws.ping()


async def test_freeze_leaves_pings_unanswered_then_drops(realtime_server: RealtimeServer) -> None:
    async with wire_client(f"{realtime_server.url}?fault=freeze:0.5:after=1") as client:
        await client.recv()  # session.created
        pong = await client.ws.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pong), 0.3)
        await realtime_server.connections[0].closed.wait()
    assert realtime_server.connections[0].close_code == 1006
