"""`pivox status|say|ask|mute|volume|timers|stop` against a real control socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from pivox.cli import main
from pivox.control.socket import ControlSocket
from tests.control_host import RecordingHost


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, RecordingHost]]:
    host = RecordingHost()
    server = ControlSocket(host, str(tmp_path / "control.sock"))
    await server.start()
    yield server.path, host
    await server.close()


async def pivox(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_each_command(served: tuple[str, RecordingHost],
                            capsys: pytest.CaptureFixture[str]) -> None:
    path, host = served
    assert await pivox("mute", "on", "--socket", path) == 0
    assert await pivox("volume", "40", "--socket", path) == 0
    assert await pivox("say", "Front door opened", "--socket", path) == 0
    assert await pivox("ask", "Pills?", "--socket", path) == 0
    assert await pivox("stop", "--socket", path) == 0
    assert host.calls == [("mute", True), ("volume", 40), ("say", "Front door opened"),
                          ("ask", "Pills?"), ("stop", None)]
    capsys.readouterr()
    assert await pivox("status", "--socket", path) == 0
    text = capsys.readouterr().out
    assert "state:    idle" in text and "mute:     on" in text and "412 ms" in text
    assert await pivox("status", "--json", "--socket", path) == 0
    assert orjson.loads(capsys.readouterr().out)["volume"] == 40
    assert await pivox("timers", "--socket", path) == 0
    assert "tea: 90 s left" in capsys.readouterr().out


async def test_errors_have_exit_codes(served: tuple[str, RecordingHost], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = served
    assert await pivox("volume", "300", "--socket", path) == 1
    assert "from 0 to 100" in capsys.readouterr().out
    assert await pivox("status", "--socket", str(tmp_path / "none.sock")) == 4
    assert "no daemon answers" in capsys.readouterr().out
