"""Stalled sound devices: the loop never blocks on PortAudio, and SIGTERM always ends the process.

A `WedgedSpeaker` (the real PyAudio speaker whose callback, stop, abort and close stop
returning, as PortAudio's do when the sound server stalls) and a suspended PulseAudio sink
(a real stall) drive the daemon into AUDIO_ERROR; the loop keeps running (LED, link, retries)
and recovers. `pivox run` as a subprocess ends within 2 s of SIGTERM with a call still stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pivox.audio.devices import AUDIO_GRACE_S
from pivox.audio.soundcard import Speaker
from pivox.core.machine import State
from pivox.daemon import STOP_TASKS_S
from pivox.wiring.alarms import Alarms
from tests.daemon_harness import WedgedSpeaker, daemon_config, running, wait_until
from tests.fixtures_server import StartServer, pcm_tone
from tests.gpio_double import GpioDouble
from tests.pulse import SINK, PulseAudio
from tests.test_faults import idle_on, logs, messages  # noqa: F401 (logs is a fixture)

HANG_S = 60.0
"""How long a wedged call blocks in-process (for ever, as far as a test can tell)."""
STOP_S = 2.0


async def test_a_wedged_speaker_is_abandoned_and_the_loop_keeps_going(
    start_realtime_server: StartServer, gpio_double: GpioDouble, live_pulse: PulseAudio,
    logs: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    """Callbacks stop and stop/abort/close never return: AUDIO_ERROR while the close is still
    stuck (LED, link kept), retries go on, back to IDLE once a new speaker works."""
    wedge, release = threading.Event(), threading.Event()

    def open_speaker(config: Any, ring: Any, far_end: Any = None) -> WedgedSpeaker:
        return WedgedSpeaker(ring, wedge, release, HANG_S, latency_ms=config.audio.latency_ms,
                             far_end=far_end)

    try:
        async with start_realtime_server() as server, running(
            daemon_config(server.url, "push_to_talk"), gpio_double, open_speaker=open_speaker,
        ) as (daemon, led):
            await idle_on(daemon, server, 1)
            await asyncio.sleep(AUDIO_GRACE_S)  # past the grace a fresh stream gets
            wedge.set()
            await wait_until(lambda: daemon.machine.state is State.AUDIO_ERROR, 10, "audio error")
            await wait_until(lambda: "close" in WedgedSpeaker.inside, 5, "the close stuck")
            assert led.states[-1] == "audio_error" and daemon.link.conn is not None
            # the loop runs on while the close is stuck: the retry opens a new speaker
            # (which wedges too), and the LED blinks
            before = len(gpio_double.calls)
            await wait_until(lambda: len(WedgedSpeaker.inside) >= 2, 20, "a retry, stuck too")
            assert len(gpio_double.calls) > before
            wedge.clear()
            await wait_until(lambda: daemon.machine.state is State.IDLE, 40, "recovered")
            assert led.states[-1] == "idle" and len(server.connections) == 1
            assert "close" in WedgedSpeaker.inside  # the first close never returned
            assert daemon.audio.calls.hung
    finally:
        release.set()
    abandoned = messages(logs, "pivox.devicecall")
    assert abandoned and abandoned[0].startswith("close of default output did not return"), (
        abandoned)
    assert "audio devices back" in messages(logs, "pivox.devices")


class SlowFlushSpeaker(Speaker):
    """The real PyAudio speaker whose barge-in flush takes FLUSH_S longer; it logs its calls."""

    def __init__(self, ring: Any, calls: list[str], **kwargs: Any) -> None:
        super().__init__(ring, **kwargs)
        self._calls = calls

    def flush(self) -> int:
        self._calls.append("flush")
        time.sleep(FLUSH_S)
        unheard = super().flush()
        self._calls.append("flushed")
        return unheard

    def close(self) -> None:
        self._calls.append("close")
        super().close()


FLUSH_S = 0.5


async def test_a_stop_during_a_barge_in_flush_closes_the_speaker_after_it(
    start_realtime_server: StartServer, gpio_double: GpioDouble, live_pulse: PulseAudio,
) -> None:
    """SIGTERM while the barge-in flush runs on its worker: the speaker is closed once the flush
    is over, never beside it (two PortAudio calls on one stream at once)."""
    calls: list[str] = []

    def open_speaker(config: Any, ring: Any, far_end: Any = None) -> SlowFlushSpeaker:
        return SlowFlushSpeaker(ring, calls, latency_ms=config.audio.latency_ms, far_end=far_end)

    assert live_pulse.mic is not None
    async with start_realtime_server(reply_ms=5000, speed=1.0) as server, running(
        daemon_config(server.url, "always_on"), gpio_double, open_speaker=open_speaker,
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        live_pulse.mic.play(pcm_tone(600))
        await wait_until(lambda: daemon.machine.state is State.SPEAKING, 15, "speaking")
        await asyncio.sleep(0.5)
        live_pulse.mic.play(pcm_tone(500))
        await wait_until(lambda: "flush" in calls, 15, "the barge-in flush started")
        # leaving the block stops the daemon, mid-flush
    assert calls.index("close") > calls.index("flushed"), calls


async def test_a_task_that_ignores_its_cancel_does_not_hold_the_stop(
    start_realtime_server: StartServer, gpio_double: GpioDouble, live_pulse: PulseAudio,
    logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    """The timer task swallows every cancel (as a loop around asyncio.wait_for can on 3.11):
    the daemon still stops, everything closed, and one line names the task and where it waits."""
    release = asyncio.Event()

    async def ignores_cancels(self: Alarms) -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    monkeypatch.setattr(Alarms, "run", ignores_cancels)
    try:
        async with start_realtime_server() as server, running(
            daemon_config(server.url, "push_to_talk"), gpio_double,
        ) as (daemon, led):
            await idle_on(daemon, server, 1)
        # running() asserted that run() returned 0 within 10 s (before: it waited for ever)
        assert led.states[-1] == "stopped" and daemon.link.conn is None
        (stuck,) = [r.getMessage() for r in logs.records if "did not end" in r.getMessage()]
        assert stuck.startswith(f"task timers did not end within {STOP_TASKS_S:.1f} s of its "
                                "cancel; left behind at ignores_cancels (test_hangs.py:")
    finally:
        release.set()


async def test_a_suspended_sink_is_audio_error_then_recovers(
    start_realtime_server: StartServer, gpio_double: GpioDouble,
    logs: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    """PulseAudio stops pulling from the speaker (sink suspended): AUDIO_ERROR with its LED,
    the link kept; once the sink runs again, IDLE."""
    with PulseAudio() as own:
        async with start_realtime_server() as server, running(
            daemon_config(server.url, "push_to_talk"), gpio_double
        ) as (daemon, led):
            await idle_on(daemon, server, 1)
            await asyncio.sleep(AUDIO_GRACE_S)
            own.pactl("suspend-sink", SINK, "1")
            await wait_until(lambda: daemon.machine.state is State.AUDIO_ERROR, 20,
                             "audio error")
            assert led.states[-1] == "audio_error" and daemon.link.conn is not None
            await asyncio.sleep(2.0)
            own.pactl("suspend-sink", SINK, "0")
            await wait_until(lambda: daemon.machine.state is State.IDLE, 40, "recovered")
            assert led.states[-1] == "idle" and len(server.connections) == 1
    assert any(m.startswith("audio stalled: default output")
               for m in messages(logs, "pivox.devices"))


class NotifyPeer:
    """The service manager's end of `$NOTIFY_SOCKET`."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def poll(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages


class Lines:
    """The lines a subprocess writes to a pipe, collected by a thread."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


async def test_sigterm_ends_pivox_run_within_2_s_while_a_device_call_hangs(
    start_realtime_server: StartServer, live_pulse: PulseAudio, tmp_path: Path,
) -> None:
    """`pivox run` with a speaker that wedges for good: after SIGTERM, STOPPING=1 and the
    process is gone within 2 s though the close of the speaker never returns."""
    flag, config = tmp_path / "wedge", tmp_path / "pivox.toml"
    peer = NotifyPeer(tmp_path / "notify")
    async with start_realtime_server() as server:
        config.write_text(
            f'[server]\nurl = "{server.url}"\nmodel = ""\n[session]\nmode = "push_to_talk"\n'
            "[button]\nenabled = false\n[led]\nenabled = false\n")
        env = {**os.environ, "PIVOX_TEST_WEDGE": str(flag), "NOTIFY_SOCKET": str(peer.sock
               .getsockname()), "OPENAI_API_KEY": "", "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.wedged_run", "run", "--config", str(config)],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        out = Lines(process.stderr)
        try:
            await wait_until(lambda: out.has("-> idle"), 20, "idle")
            await asyncio.sleep(AUDIO_GRACE_S)
            flag.touch()
            await wait_until(lambda: out.has("did not return within"), 15, "a call abandoned")
            assert out.has("-> audio_error")
            sent = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await wait_until(lambda: process.poll() is not None, STOP_S, "gone within 2 s")
            took = time.monotonic() - sent
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
    print(f"pivox run gone {took * 1000:.0f} ms after SIGTERM with a device call stuck")
    assert any("STOPPING=1" in m for m in peer.poll())
    assert out.has("stopping") and out.has("never returned"), out.lines[-10:]
    assert "Traceback" not in "\n".join(out.lines)
