"""The control socket on a real Unix socket: each command, many clients, garbage, slow clients."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pivox.control import socket as control_socket
from pivox.control.socket import MAX_LINE_BYTES, ControlSocket, client_socket_path, runtime_dir
from tests.control_host import RecordingHost


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[ControlSocket, RecordingHost]]:
    host = RecordingHost()
    server = ControlSocket(host, str(tmp_path / "run" / "control.sock"))
    await server.start()
    yield server, host
    await server.close()


async def request(path: str, line: bytes) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(line)
    await writer.drain()
    reply = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    result: dict[str, Any] = orjson.loads(reply)
    return result


def ask(cmd: str, arg: Any = None) -> bytes:
    body: dict[str, Any] = {"cmd": cmd} if arg is None else {"cmd": cmd, "arg": arg}
    return orjson.dumps(body) + b"\n"


async def test_each_command_reaches_the_host(served: tuple[ControlSocket, RecordingHost]) -> None:
    server, host = served
    assert (await request(server.path, ask("mute", True)))["status"]["muted"] is True
    assert (await request(server.path, ask("volume", 35)))["status"]["volume"] == 35
    assert (await request(server.path, ask("say", "Front door opened")))["ok"]
    assert (await request(server.path, ask("ask", "Pills?")))["ok"]
    assert (await request(server.path, ask("stop")))["ok"]
    assert (await request(server.path, ask("converse")))["ok"]
    status = await request(server.path, ask("status"))
    assert status["status"]["state"] == "idle" and status["status"]["last_latency_ms"] == 412
    assert (await request(server.path, ask("timers")))["timers"][0]["name"] == "tea"
    assert host.calls == [("mute", True), ("volume", 35), ("say", "Front door opened"),
                          ("ask", "Pills?"), ("stop", None), ("converse", None)]


async def test_socket_is_group_readable_only(served: tuple[ControlSocket, RecordingHost]) -> None:
    server, _ = served
    info = os.stat(server.path)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o660
    assert stat.S_IMODE(os.stat(os.path.dirname(server.path)).st_mode) == 0o700


async def test_several_requests_on_one_connection(
        served: tuple[ControlSocket, RecordingHost]) -> None:
    server, _ = served
    reader, writer = await asyncio.open_unix_connection(server.path)
    writer.write(ask("volume", 10) + ask("volume", 20) + b"\n" + ask("volume", 30))
    replies = [orjson.loads(await reader.readline()) for _ in range(3)]
    assert [r["status"]["volume"] for r in replies] == [10, 20, 30]
    writer.close()


GARBAGE = [
    (b"not json\n", "not JSON"),
    (b"\xff\xfe\x00\n", "not JSON"),
    (b"[1, 2]\n", "expected {"),
    (b'{"command": "mute"}\n', "expected {"),
    (b'{"cmd": "mute", "arg": true, "x": 1}\n', "unknown key"),
    (b'{"cmd": "reboot"}\n', "unknown command"),
    (b'{"cmd": "volume", "arg": 1000}\n', "from 0 to 100"),
    (b'{"cmd": "say", "arg": ' + b'"' + b"a" * 2000 + b'"}\n', "too long"),
    (b'{"cmd": "say"}\n', "expected text"),
]


@pytest.mark.parametrize(("line", "words"), GARBAGE)
async def test_garbage_gets_an_error(served: tuple[ControlSocket, RecordingHost],
                                     line: bytes, words: str) -> None:
    server, host = served
    reply = await request(server.path, line)
    assert reply["ok"] is False and words in reply["error"]
    assert host.calls == []
    assert (await request(server.path, ask("status")))["ok"]  # still serving


async def test_an_oversized_line_is_refused_and_the_client_closed(
        served: tuple[ControlSocket, RecordingHost]) -> None:
    server, host = served
    reader, writer = await asyncio.open_unix_connection(server.path)
    writer.write(b'{"cmd": "say", "arg": "' + b"a" * (MAX_LINE_BYTES * 4))
    reply = orjson.loads(await asyncio.wait_for(reader.readline(), 5))
    assert reply["ok"] is False and "over 4096 bytes" in reply["error"]
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed
    writer.close()
    assert host.calls == []


async def test_fifty_concurrent_clients(served: tuple[ControlSocket, RecordingHost]) -> None:
    server, host = served
    replies = await asyncio.gather(*(request(server.path, ask("volume", n)) for n in range(50)))
    assert all(r["ok"] for r in replies)
    assert sorted(v for _, v in host.calls) == list(range(50))


async def test_a_client_that_never_reads_is_dropped_and_others_are_served(
        served: tuple[ControlSocket, RecordingHost], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control_socket, "WRITE_TIMEOUT_S", 0.3)
    server, _ = served
    _reader, writer = await asyncio.open_unix_connection(server.path)
    lines = ask("status") * 20_000  # ~6 MB of replies it will never read
    writer.write(lines)
    for _ in range(20):  # the others go on while it clogs its own connection
        assert (await asyncio.wait_for(request(server.path, ask("status")), 2))["ok"]
    async with asyncio.timeout(10):
        while server.refused == 0:
            await asyncio.sleep(0.05)
    writer.close()


async def test_a_silent_client_is_closed(served: tuple[ControlSocket, RecordingHost],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control_socket, "IDLE_TIMEOUT_S", 0.2)
    server, _ = served
    reader, writer = await asyncio.open_unix_connection(server.path)
    writer.write(b'{"cmd": "sta')  # and nothing more
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_past_the_client_limit_a_client_is_told_busy(
        served: tuple[ControlSocket, RecordingHost], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control_socket, "MAX_CLIENTS", 2)
    server, _ = served
    held = [await asyncio.open_unix_connection(server.path) for _ in range(2)]
    await asyncio.sleep(0.05)
    reply = await request(server.path, ask("status"))
    assert reply == {"ok": False, "error": "busy: too many clients"}
    for _, writer in held:
        writer.close()


async def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "control.sock")
    first = ControlSocket(RecordingHost(), path)
    await first.start()
    first._server.close()  # type: ignore[union-attr]  # a daemon killed: the file stays
    second = ControlSocket(RecordingHost(), path)
    await second.start()
    assert (await request(path, ask("status")))["ok"]
    await second.close()
    assert not os.path.exists(path)


def test_runtime_dir_prefers_systemd() -> None:
    assert runtime_dir({"RUNTIME_DIRECTORY": "/run/pivox", "XDG_RUNTIME_DIR": "/run/user/1"}) \
        == "/run/pivox"
    assert runtime_dir({"XDG_RUNTIME_DIR": "/run/user/1"}) == "/run/user/1/pivox"
    assert runtime_dir({}) is None
    assert client_socket_path({"PIVOX_SOCKET": "/x.sock"}) == "/x.sock"


async def test_a_live_socket_is_not_taken_over(served: tuple[ControlSocket, RecordingHost]) -> None:
    server, _ = served
    with pytest.raises(OSError, match="another pivox serves it"):
        await ControlSocket(RecordingHost(), server.path).start()
    assert (await request(server.path, ask("status")))["ok"]  # the first one still serves


async def test_a_host_that_raises_is_an_error_reply(tmp_path: Path) -> None:
    class Broken(RecordingHost):
        def set_volume(self, level: int) -> None:
            raise RuntimeError("speaker gone")

    server = ControlSocket(Broken(), str(tmp_path / "control.sock"))
    await server.start()
    try:
        reply = await request(server.path, ask("volume", 3))
        assert reply == {"ok": False, "error": "internal error; see the daemon's log"}
        assert (await request(server.path, ask("status")))["ok"]
    finally:
        await server.close()
