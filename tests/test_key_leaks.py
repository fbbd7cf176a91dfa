"""The API key never leaves where it belongs: not into any log line, not to another host.

Real processes and real websockets on loopback: `pivox run --set log.level=debug` against
the bundled server, everything it prints grepped for the key; a redirecting server whose
target records the headers it was sent.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from pivox.net.secrets import ApiKey
from pivox.net.session import Connection, Endpoint
from tests.daemon_harness import start_pivox_run, wait_for_text
from tests.fixtures_server import StartServer
from tests.pulse import PulseAudio

SECRET = "sk-live-SECRET0123456789abcdef"


@pytest.mark.parametrize(
    ("auth_style", "server_key", "wait_for"),
    [
        ("bearer", SECRET, "connected to"),
        ("api-key", SECRET, "connected to"),
        ("bearer", "sk-another-key-the-server-wants", "auth error"),
        ("api-key", "sk-another-key-the-server-wants", "auth error"),
    ],
)
async def test_a_debug_run_never_prints_the_key(
    start_realtime_server: StartServer, pulse: PulseAudio, tmp_path: Path,
    auth_style: str, server_key: str, wait_for: str,
) -> None:
    env = {**pulse.env, "OPENAI_API_KEY": SECRET, "CREDENTIALS_DIRECTORY": ""}
    async with start_realtime_server(api_key=server_key) as server:
        proc = start_pivox_run(server.url, tmp_path, env, "log.level=debug",
                               f"server.auth_style={auth_style}")
        try:
            await wait_for_text(tmp_path / "out.log", wait_for)
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 10)
    text = (tmp_path / "out.log").read_text(errors="replace")
    header = "Authorization" if auth_style == "bearer" else "api-key"
    assert SECRET not in text and SECRET[3:] not in text
    assert f"> {header}: [redacted]" in text  # websockets logged the header, redacted


# --------------------------------------------------------------------------- redirects


@dataclass
class Recorder:
    """A websockets server that records the headers of every handshake it is sent."""

    headers: list[Headers] = field(default_factory=list)
    url: str = ""  # the redirecting server's

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.headers.append(request.headers)
        return connection.respond(HTTPStatus.FORBIDDEN, "recorded\n")


@asynccontextmanager
async def redirecting(host: str, target: Callable[[int], str]) -> AsyncIterator[Recorder]:
    """A server on 127.0.0.1 answering 302 to `target(port)`, and a recorder on `host`."""
    recorder = Recorder()

    def redirect(connection: ServerConnection, request: Request) -> Response:
        response = connection.respond(HTTPStatus.FOUND, "moved\n")
        response.headers["Location"] = target(port)
        return response

    async with serve(lambda ws: ws.close(), host, 0,
                     process_request=recorder.process_request) as record_server:
        port = record_server.sockets[0].getsockname()[1]
        async with serve(lambda ws: ws.close(), "127.0.0.1", 0,
                         process_request=redirect) as redirect_server:
            recorder.url = f"ws://127.0.0.1:{redirect_server.sockets[0].getsockname()[1]}/"
            yield recorder


def _endpoint(url: str, auth_style: str) -> Endpoint:
    return Endpoint(url=url, model="", dialect="ga", auth_style=auth_style,
                    api_key=ApiKey(SECRET, source="test"), ping_interval_s=10,
                    ping_timeout_s=10, connect_timeout_s=5)


@pytest.mark.parametrize("auth_style", ["bearer", "api-key"])
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"])  # another port, another address
async def test_the_key_never_follows_a_redirect_to_another_origin(
    auth_style: str, host: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with redirecting(host, lambda port: f"ws://{host}:{port}/v1/realtime") as recorder:
        for _ in range(9):
            with pytest.raises(Exception):  # noqa: B017 - refused or recorded, never connected
                await Connection.open(_endpoint(recorder.url, auth_style))
    sent = [value for headers in recorder.headers for value in headers.values()]
    assert not any(SECRET in value for value in sent)
    assert f"server redirected to ws://{host}:" in caplog.text


async def test_a_same_origin_redirect_is_followed_with_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    seen: list[Headers] = []

    def redirect_or_record(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/old":
            response = connection.respond(HTTPStatus.MOVED_PERMANENTLY, "moved\n")
            response.headers["Location"] = "/new"
            return response
        seen.append(request.headers)
        return None

    async def hold(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with serve(hold, "127.0.0.1", 0, process_request=redirect_or_record) as server:
        port = server.sockets[0].getsockname()[1]
        conn = await Connection.open(_endpoint(f"ws://127.0.0.1:{port}/old", "api-key"))
        await conn.close()
    assert [headers["api-key"] for headers in seen] == [SECRET]
    assert "server redirected to ws://127.0.0.1" in caplog.text and "following" in caplog.text
