"""pivox.linkguard on real websockets over loopback: binary messages never reach the daemon.

(The redirect rule is tested with the key it protects, in tests/test_key_leaks.py.)
"""

from __future__ import annotations

import logging

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve

from pivox.net.session import Connection, Endpoint

ERROR = orjson.dumps({"type": "error", "error": {"type": "server_error", "message": "binary"}})
TEXT = orjson.dumps({"type": "session.created", "session": {"id": "sess_text"}})


async def send_binary_then_text(ws: ServerConnection) -> None:
    await ws.send(ERROR)  # bytes: one binary frame
    await ws.send([ERROR[:10], ERROR[10:]])  # a fragmented binary message
    await ws.send(TEXT.decode())
    await ws.wait_closed()


async def test_json_in_binary_frames_is_refused_text_is_received(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with serve(send_binary_then_text, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        conn = await Connection.open(Endpoint(
            url=f"ws://127.0.0.1:{port}/", model="", dialect="ga", auth_style="bearer",
            api_key=None, ping_interval_s=10, ping_timeout_s=10, connect_timeout_s=5))
        try:
            assert await conn.recv() == TEXT
        finally:
            await conn.close()
    assert caplog.text.count("refused a binary message") == 2
