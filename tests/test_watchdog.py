"""The watchdog pings over a real sd_notify socket: only while the loop and the audio live."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pivox.audio.devices import AUDIO_GRACE_S
from pivox.cli.hardware import open_pyaudio_speaker
from pivox.core.machine import State
from pivox.daemon import Daemon, Hardware
from pivox.host.systemd import Notifier
from tests.daemon_harness import FailingMicrophone, daemon_config, exit_code, wait_until
from tests.fixtures_server import StartServer


class NotifySocket:
    """The service manager's end of NOTIFY_SOCKET: collects datagrams with their arrival."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[tuple[float, str]] = []

    def drain(self) -> list[tuple[float, str]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.messages
            self.messages.append((time.monotonic(), data.decode()))

    async def read_forever(self) -> None:
        while True:
            self.drain()
            await asyncio.sleep(0.05)

    def pings_after(self, t: float) -> int:
        return sum(1 for at, m in self.drain() if at > t and "WATCHDOG=1" in m.split("\n"))


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    server = NotifySocket(tmp_path / "notify")
    yield server
    server.sock.close()


async def test_pings_stop_while_the_audio_is_dead_and_resume_after(
    start_realtime_server: StartServer, live_pulse: Any, notify: NotifySocket,
) -> None:
    broken = {"on": False}
    notifier = Notifier({"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000",
                         "WATCHDOG_PID": str(os.getpid())})

    def open_mic(config: Any, on_frame: Any) -> FailingMicrophone:
        return FailingMicrophone(broken, on_frame=on_frame, latency_ms=config.audio.latency_ms)

    hardware = Hardware(open_microphone=open_mic, open_speaker=open_pyaudio_speaker,
                        open_button=None, open_led=None)
    async with start_realtime_server() as server:
        daemon = Daemon(daemon_config(server.url, "push_to_talk"), hardware, notifier=notifier)
        task = asyncio.create_task(daemon.run())
        reader = asyncio.create_task(notify.read_forever())  # as the manager does
        try:
            await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
            assert any(m.startswith("READY=1") for _, m in notify.drain())
            await asyncio.sleep(AUDIO_GRACE_S)
            start = time.monotonic()
            await asyncio.sleep(1.0)
            assert notify.pings_after(start) >= 3  # every 0.2 s while all is well
            broken["on"] = True
            await wait_until(lambda: daemon.machine.state is State.AUDIO_ERROR, 10, "error")
            silent_from = time.monotonic()
            await asyncio.sleep(2.0)
            assert notify.pings_after(silent_from) == 0
            assert any("STATUS=audio error" in m for _, m in notify.drain())
            broken["on"] = False
            await wait_until(lambda: daemon.machine.state is State.IDLE, 40, "recovered")
            back = time.monotonic()
            await asyncio.sleep(1.0)
            assert notify.pings_after(back) >= 3
        finally:
            daemon.stop()
            assert await exit_code(task, 10) == 0
            reader.cancel()
        assert any("STOPPING=1" in m for _, m in notify.drain())
