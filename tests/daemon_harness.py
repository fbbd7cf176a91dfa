"""Helpers for end-to-end daemon tests: the daemon on PulseAudio, the GPIO double and a server.

`running()` starts a `Daemon` on real PyAudio devices (or the factories given) with a
`RecordingLed` on the GPIO double and stops it cleanly, failing if `run()` did not return 0.
`start_pivox_run()` starts a real `pivox run` process instead, its output in a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from array import array
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pivox.audio.soundcard import Microphone, Speaker
from pivox.cli.hardware import gpio_button, open_pyaudio_microphone, open_pyaudio_speaker
from pivox.config import Config, load_config
from pivox.core.errors import DeviceError
from pivox.core.events import InputAudioAppend
from pivox.daemon import Daemon, Hardware
from pivox.host.gpio import Led
from pivox.host.waits import where
from pivox.net.secrets import ApiKey
from pivox.server import RealtimeServer
from tests.gpio_double import GpioDouble

BUTTON = 17
LED_PIN = 18


class RecordingLed(Led):
    """The real LED adapter over the GPIO double, remembering the states it was shown."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.states: list[str] = []

    def show(self, pattern: Any, state: str = "") -> None:
        self.states.append(state)
        super().show(pattern, state)


def daemon_config(url: str, mode: str, *extra: str) -> Config:
    """Defaults, pointed at the local server, with fast reconnects."""
    return load_config(None, [
        f"server.url={url}", "server.model=", f"session.mode={mode}",
        "server.reconnect_max_s=2", "server.auth_retry_s=10",
        "session.vad_silence_duration_ms=300", f"button.pin={BUTTON}", f"led.pin={LED_PIN}",
        *extra,
    ])


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0,
                     what: str = "condition") -> None:
    """Poll `predicate` every 10 ms; fail the test after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
    assert predicate(), what


@contextlib.asynccontextmanager
async def running(
    config: Config, gpio: GpioDouble, api_key: ApiKey | None = None, *,
    open_microphone: Callable[..., Any] = open_pyaudio_microphone,
    open_speaker: Callable[..., Any] = open_pyaudio_speaker,
    daemon_class: type[Daemon] = Daemon,
) -> AsyncIterator[tuple[Daemon, RecordingLed]]:
    """The daemon (or a recording subclass) on PulseAudio (or the audio factories given) and
    the GPIO double, stopped cleanly at the end."""
    leds: list[RecordingLed] = []

    def open_led(cfg: Config) -> RecordingLed:
        leds.append(RecordingLed(cfg.led.pin, pwm_hz=cfg.led.pwm_hz, gpio_module=gpio))
        return leds[-1]

    hardware = Hardware(open_microphone=open_microphone,
                        open_speaker=open_speaker,
                        open_button=gpio_button(gpio), open_led=open_led)
    daemon = daemon_class(config, hardware, api_key=api_key)
    task = asyncio.create_task(daemon.run())
    try:
        await wait_until(lambda: bool(leds) or task.done(), 5, "daemon started")
        yield daemon, leds[0]
    finally:
        daemon.stop()
        assert await exit_code(task) == 0


async def exit_code(task: asyncio.Task[int], timeout: float = 10.0) -> int:
    """What the daemon's run() returned; fails, never hangs, when it has not ended within
    `timeout` s (asyncio.wait_for would wait for ever on a task that ignores its cancel)."""
    done, _ = await asyncio.wait({task}, timeout=timeout)
    assert done, f"the daemon did not stop within {timeout:g} s; it waits at {where(task)}"
    return task.result()


def start_pivox_run(url: str, tmp_path: Path, env: dict[str, str],
                    *sets: str) -> subprocess.Popen[bytes]:
    """`pivox run` against `url` without button and LED, logging to stderr; stdout and stderr
    go to `tmp_path/out.log`. `sets` are extra `--set` overrides."""
    config = tmp_path / "pivox.toml"
    config.write_text(
        f'[server]\nurl = "{url}"\nmodel = ""\nauth_retry_s = 10\n'
        "[button]\nenabled = false\n[led]\nenabled = false\n"
    )
    output = (tmp_path / "out.log").open("wb")
    argv = [sys.executable, "-m", "pivox", "run", "--config", str(config),
            "--set", "log.journal=off"]
    for override in sets:
        argv += ["--set", override]
    return subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env={**os.environ, **env})


async def wait_for_text(path: Path, text: str, timeout: float = 20.0) -> None:
    """Poll the file at `path` until it contains `text`; fail the test after `timeout` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while text not in path.read_text(errors="replace"):
        assert asyncio.get_running_loop().time() < deadline, path.read_text()[-3000:]
        await asyncio.sleep(0.05)


def received(server: RealtimeServer, index: int = -1) -> list[Any]:
    """The client events one connection received, in order."""
    return [event for _, event in server.connections[index].received]


def kinds(events: list[Any]) -> list[type]:
    """Event classes with runs of appends folded into one."""
    out: list[type] = []
    for event in events:
        if not (out and out[-1] is InputAudioAppend and type(event) is InputAudioAppend):
            out.append(type(event))
    return out


def ramp_ms(pcm: bytes) -> float:
    """Milliseconds of a ramp reply that the recording holds (its highest position)."""
    samples = array("h", pcm)
    top = max(samples, default=0)
    return (top * 8 + 8) / 24 if top > 0 else 0.0


def tail_states(led: RecordingLed, n: int) -> list[str]:
    """The last `n` states the LED was shown."""
    return led.states[-n:]


class FailingMicrophone(Microphone):
    """The real PyAudio microphone, whose input starts failing while `broken["on"]` is set:
    the running stream's callback gets an error, and opening a new one is refused."""

    def __init__(self, broken: dict[str, bool], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._broken = broken

    def start(self) -> None:
        if self._broken["on"]:
            raise DeviceError("cannot open input stream: device unavailable "
                              "(portaudio error -9985)", device=self.label)
        super().start()

    def _callback(self, in_data: bytes | None, frame_count: int, time_info: dict[str, float],
                  status: int) -> tuple[bytes | None, int]:
        if self._broken["on"]:
            return super()._callback(None, frame_count, time_info, status)  # no data: an error
        return super()._callback(in_data, frame_count, time_info, status)


class Flag(Protocol):
    """What tells a WedgedSpeaker to wedge (a threading.Event, or a file's existence)."""

    def is_set(self) -> bool: ...


class WedgedSpeaker(Speaker):
    """The real PyAudio speaker, wedged while `wedge` is set: its callback stops returning (a
    stalled sound server), so the real Pa_StopStream would wait for it for ever, and so do
    this stream's stop, close (abort) and flush, until `release` is set or `hang_s` passes."""

    inside: ClassVar[list[str]] = []
    """Calls blocked inside a wedged speaker right now (all instances)."""

    def __init__(self, ring: Any, wedge: Flag, release: threading.Event,
                 hang_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(ring, **kwargs)
        self._wedge, self._release, self._hang_s = wedge, release, hang_s

    def stop(self) -> None:
        self._hang("stop")
        super().stop()

    def close(self) -> None:
        self._hang("close")
        super().close()

    def flush(self) -> int:
        self._hang("flush")
        return super().flush()

    def _callback(self, in_data: bytes | None, frame_count: int, time_info: dict[str, float],
                  status: int) -> tuple[bytes | None, int]:
        if self._wedge.is_set():
            self._release.wait(self._hang_s)
        return super()._callback(in_data, frame_count, time_info, status)

    def _hang(self, what: str) -> None:
        if self._wedge.is_set():
            self.inside.append(what)
            try:
                self._release.wait(self._hang_s)
            finally:
                self.inside.remove(what)
