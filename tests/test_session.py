"""The WebSocket edge: URL, auth headers, and telling auth failures from others, on loopback."""

from __future__ import annotations

import pytest

from pivox.core.errors import AuthError
from pivox.core.events import InputAudioCommit
from pivox.net.secrets import ApiKey
from pivox.net.session import Connection, Endpoint, closed_by_auth, describe_close
from pivox.server.faults import parse_fault
from tests.fixtures_server import StartServer

KEY = ApiKey("sk-local-key", source="test")


def endpoint(url: str, **changes: object) -> Endpoint:
    fields: dict[str, object] = dict(
        url=url, model="gpt-realtime", dialect="ga", auth_style="bearer", api_key=KEY,
        ping_interval_s=5.0, ping_timeout_s=5.0, connect_timeout_s=5.0,
    )
    fields.update(changes)
    return Endpoint(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("url", "model", "full"), [
    ("wss://api.openai.com/v1/realtime", "gpt-realtime",
     "wss://api.openai.com/v1/realtime?model=gpt-realtime"),
    ("wss://h/v1/realtime?model=mine", "gpt-realtime", "wss://h/v1/realtime?model=mine"),
    ("wss://h/openai/realtime?api-version=2025-04-01", "dep",
     "wss://h/openai/realtime?api-version=2025-04-01&model=dep"),
    ("ws://127.0.0.1:8765/v1/realtime", "", "ws://127.0.0.1:8765/v1/realtime"),
])
def test_full_url_adds_the_model_unless_named(url: str, model: str, full: str) -> None:
    assert endpoint(url, model=model).full_url == full


def test_headers_follow_auth_style_and_dialect() -> None:
    assert endpoint("wss://h/").headers() == [("Authorization", "Bearer sk-local-key")]
    assert endpoint("wss://h/", auth_style="api-key", dialect="beta").headers() == [
        ("api-key", "sk-local-key"), ("OpenAI-Beta", "realtime=v1")]
    assert endpoint("wss://h/", api_key=None).headers() == []
    assert "sk-local-key" not in repr(endpoint("wss://h/"))


async def test_a_refused_key_is_an_auth_error(start_realtime_server: StartServer) -> None:
    async with start_realtime_server(api_key="sk-other") as server:
        with pytest.raises(AuthError, match="HTTP 401"):
            await Connection.open(endpoint(server.url))


async def test_a_policy_close_is_told_apart(start_realtime_server: StartServer) -> None:
    async with start_realtime_server(api_key="sk-local-key") as server:
        server.inject(parse_fault("auth"))
        conn = await Connection.open(endpoint(server.url))
        with pytest.raises(Exception) as info:
            while True:
                await conn.recv()
        assert closed_by_auth(info.value)
        assert describe_close(info.value).startswith("server closed with 1008")


async def test_frames_come_raw_and_events_go_encoded(start_realtime_server: StartServer) -> None:
    async with start_realtime_server() as server:
        conn = await Connection.open(endpoint(server.url, api_key=None, dialect="beta"))
        frame = await conn.recv()
        assert isinstance(frame, bytes) and b'"session.created"' in frame
        await conn.send(InputAudioCommit(event_id="evt_1"))
        await conn.close()
        assert server.connections[0].dialect == "beta"
        assert any(isinstance(e, InputAudioCommit) for _, e in server.connections[0].received)


def test_describe_close_of_a_refused_connection() -> None:
    assert describe_close(ConnectionRefusedError(111, "Connection refused")).startswith(
        "cannot connect")


GEMINI = "wss://generativelanguage.googleapis.com/ws/x.BidiGenerateContent"


def test_gemini_sends_the_key_by_header_or_query_and_never_adds_the_model() -> None:
    header = endpoint(GEMINI, provider="gemini", auth_style="header", model="models/m")
    assert header.full_url == GEMINI
    assert header.headers() == [("x-goog-api-key", "sk-local-key")]
    query = endpoint(GEMINI + "?key=stale", provider="gemini", auth_style="query")
    assert query.full_url == GEMINI + "?key=sk-local-key"
    assert query.headers() == []
    assert endpoint(GEMINI, provider="gemini", api_key=None).headers() == []
    for ep in (header, query):
        assert "sk-local-key" not in ep.redacted_url + ep.host + repr(ep)
    assert query.redacted_url == GEMINI


async def test_a_bad_url_is_reported_without_its_query() -> None:
    bad = endpoint("ws://127.0.0.1:notaport/x", provider="gemini", auth_style="query")
    with pytest.raises(OSError) as caught:
        await Connection.open(bad)
    assert "sk-local-key" not in str(caught.value)


def test_gemini_refusing_the_key_with_1007_is_an_auth_failure() -> None:
    from websockets.exceptions import ConnectionClosedError
    from websockets.frames import Close

    def closed(code: int, reason: str) -> ConnectionClosedError:
        return ConnectionClosedError(Close(code, reason), None)

    assert closed_by_auth(closed(1007, "API key not valid. Please pass a valid API key."))
    assert not closed_by_auth(closed(1007, "session resumption handle is not valid"))
    assert closed_by_auth(closed(1008, ""))
