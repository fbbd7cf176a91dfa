"""`pivox serve` against hostile clients (issue 14, findings 8 and 13): memory bounded in
bytes, no faults from a URL unless allowed, no forged or key-bearing log lines, and a warning
when it listens beyond loopback without a key.
"""

from __future__ import annotations

import base64
import gc
import logging
import tracemalloc

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from pivox.server import RealtimeServer, ServerOptions
from pivox.server.command import main
from pivox.server.connection import exposed
from pivox.server.gemini import GeminiServer
from tests.fixtures_server import StartServer, wire_client

MIB = 1024 * 1024


async def test_records_stay_within_their_byte_bounds_after_a_flood(
    start_realtime_server: StartServer,
) -> None:
    """Was: 10 000 decoded events kept per connection, audio included, after it closed."""
    audio = base64.b64encode(bytes(MIB)).decode()  # 1 MiB of PCM per append
    async with start_realtime_server() as server:
        options = server.options
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(3):  # three clients in turn, 24 MiB of PCM each
                async with wire_client(server.url) as client:
                    for _ in range(24):
                        await client.send("input_audio_buffer.append", audio=audio)
                        await client.send("input_audio_buffer.clear")
                    await client.send("input_audio_buffer.commit", event_id="last")
                    await client.recv_until("error")  # every frame before it was handled
                await server.connections[-1].closed.wait()
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        sizes = [record.size for record in server.connections]
    assert max(sizes) <= options.record_bytes
    assert sum(sizes) <= options.records_total_bytes
    # 72 MiB of PCM went through; what stays is the records (3 x 4 MiB of base64 frames at
    # most, the decoded audio three quarters of that) and small change
    assert kept < 3 * options.record_bytes, f"{kept / MIB:.1f} MiB kept"


async def test_records_of_closed_connections_go_first_past_the_total() -> None:
    options = ServerOptions(port=0, speed=0, reply="ramp", record_bytes=64 * 1024,
                            records_total_bytes=160 * 1024)
    audio = base64.b64encode(bytes(30_000)).decode()
    async with RealtimeServer(options) as server:
        for _ in range(5):
            async with wire_client(server.url) as client:
                for _ in range(4):
                    await client.send("input_audio_buffer.append", audio=audio)
                await client.send("input_audio_buffer.commit")
                await client.recv_until("input_audio_buffer.committed")
            await server.connections[-1].closed.wait()
        sizes = [record.size for record in server.connections]
    assert 2 <= len(sizes) < 5 and sum(sizes) <= options.records_total_bytes
    assert all(size <= options.record_bytes for size in sizes)


async def test_no_compression_so_no_inflation_past_the_read_ahead_bound(
    start_realtime_server: StartServer,
) -> None:
    """Was: permessage-deflate accepted; 1 MiB frames of silence inflated hundreds at a time
    (a standalone server peaked at 273 MB RSS in a 10 s flood; 44 MB without compression)."""
    async with start_realtime_server() as server, wire_client(server.url) as client:
        assert client.ws.response is not None
        assert "Sec-WebSocket-Extensions" not in client.ws.response.headers  # offered, refused
        await client.send("input_audio_buffer.clear")
        assert (await client.recv())["type"] == "session.created"


async def test_url_faults_are_refused_unless_the_server_allows_them() -> None:
    """Was: any client could turn on `oversized:1000000000` (1.94 GB) for itself."""
    async with RealtimeServer(ServerOptions(port=0, speed=0, reply="ramp")) as server:
        with pytest.raises(InvalidStatus) as caught:
            async with wire_client(f"{server.url}?fault=oversized:1000000"):
                pass
        response = caught.value.response
        assert response.status_code == 403
        assert orjson.loads(response.body)["error"]["code"] == "url_faults_off"
        assert server.connections == []
        async with wire_client(f"{server.url}?model=m") as client:  # other keys: fine
            assert (await client.recv())["type"] == "session.created"


@pytest.mark.parametrize("spec", ["stall:inf", "freeze:nan", "oversized:999999999999"])
async def test_unbounded_url_fault_values_are_refused(
    start_realtime_server: StartServer, spec: str
) -> None:
    async with start_realtime_server() as server:
        with pytest.raises(InvalidStatus) as caught:
            async with wire_client(f"{server.url}?fault={spec}"):
                pass
        assert caught.value.response.status_code == 400


async def test_peer_text_cannot_forge_a_log_line_and_a_wrong_key_is_not_logged(
    start_realtime_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pivox.server")
    async with start_realtime_server(api_key="sk-right") as server:
        async with wire_client(
            f"{server.url}?model=x%0d%0aFORGED%20pivox.server%20INFO%20all%20good",
            key="sk-right",
        ) as client:
            await client.recv()
            await client.ws.send('{"type":\n"input_audio_buffer.clear",\r\n"event_id": "x\\n"}')
            await client.recv()
        with pytest.raises(InvalidStatus):
            async with wire_client(server.url, key="sk-WRONGSECRET98765"):
                pass
    messages = [record.getMessage() for record in caplog.records]
    assert any("FORGED" in message for message in messages)  # logged, escaped
    assert not [m for m in messages if "\n" in m or "\r" in m]
    assert any("wrong API key" in message for message in messages)
    assert not [m for m in messages if "sk-" in m or "8765" in m or "WRONG" in m]


def test_only_loopback_or_a_key_is_not_exposed() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert not exposed(host, None)
    for host in ("0.0.0.0", "::", "192.168.1.20", "pi.local"):
        assert exposed(host, None)
        assert not exposed(host, "sk-local")


def test_serving_beyond_loopback_without_a_key_warns(caplog: pytest.LogCaptureFixture) -> None:
    # 192.0.2.1 (TEST-NET-1) is no local address: the bind fails, nothing is exposed
    assert main(["--host", "192.0.2.1", "--port", "0"]) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("without an API key" in w and "192.0.2.1" in w for w in warnings)


async def test_the_gemini_server_refuses_compression_like_the_openai_one() -> None:
    """Was: the Gemini server took websockets' defaults (deflate accepted, 16 frames read
    ahead), the 273 MB case above; both servers now listen through one `listen`."""
    options = ServerOptions(port=0, speed=0, reply="ramp")
    async with GeminiServer(options) as server, connect(server.url) as ws:  # deflate offered
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
