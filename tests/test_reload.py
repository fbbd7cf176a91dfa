"""SIGHUP reload and SIGTERM stop of the daemon, in-process on real parts."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from pivox.cli.hardware import open_pyaudio_microphone, open_pyaudio_speaker
from pivox.config import load_config
from pivox.core.events import SessionUpdate
from pivox.core.machine import State
from pivox.daemon import Daemon, Hardware
from tests.daemon_harness import exit_code, received, wait_until
from tests.fixtures_server import StartServer


def write_config(path: Path, url: str, instructions: str, mode: str = "always_on") -> None:
    """A small config file pointing at the local server."""
    path.write_text(
        f'[server]\nurl = "{url}"\nmodel = ""\nreconnect_max_s = 1.0\n'
        f'[session]\ninstructions = "{instructions}"\nmode = "{mode}"\n'
        "[button]\nenabled = false\n[led]\nenabled = false\n"
    )


async def start(path: Path) -> tuple[Daemon, asyncio.Task[int]]:
    """The daemon from a config file, on PulseAudio, with no GPIO."""
    hardware = Hardware(open_microphone=open_pyaudio_microphone,
                        open_speaker=open_pyaudio_speaker, open_button=None, open_led=None)
    daemon = Daemon(load_config(path), hardware, config_path=str(path))
    return daemon, asyncio.create_task(daemon.run())


async def test_sighup_applies_a_new_session_and_sigterm_exits_cleanly(
    start_realtime_server: StartServer, live_pulse: Any, tmp_path: Path
) -> None:
    path = tmp_path / "pivox.toml"
    async with start_realtime_server() as server:
        write_config(path, server.url, "Be brief.")
        daemon, task = await start(path)
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        write_config(path, server.url, "Be very brief.")
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_until(lambda: len(server.connections) == 2
                         and daemon.machine.state is State.LISTENING, what="reconnected")
        update = next(e for e in received(server) if isinstance(e, SessionUpdate))
        assert update.session.instructions == "Be very brief."
        os.kill(os.getpid(), signal.SIGTERM)
        assert await exit_code(task, 5) == 0
        await wait_until(lambda: server.connections[-1].close_code is not None, what="closed")
        assert server.connections[-1].close_code == 1000
        assert daemon.audio.mic is None and daemon.audio.speaker is None


async def test_an_invalid_reload_keeps_the_running_config(
    start_realtime_server: StartServer, live_pulse: Any, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "pivox.toml"
    async with start_realtime_server() as server:
        write_config(path, server.url, "Be brief.")
        daemon, task = await start(path)
        try:
            await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
            path.write_text('[audio]\nring_ms = "lots"\n')
            with caplog.at_level(logging.ERROR, logger="pivox.daemon"):
                daemon.reload()
            assert f"{path}: audio.ring_ms" in caplog.text
            model = tmp_path / "gone.json"  # a wake word model file that is not there
            path.write_text(f'[session]\nmode = "wake_word"\nwake_word = "{model}"\n')
            with caplog.at_level(logging.ERROR, logger="pivox.daemon"):
                daemon.reload()
            assert f"{model}: session.wake_word" in caplog.text
            assert daemon.config.session.instructions == "Be brief."
            await asyncio.sleep(0.5)
            assert len(server.connections) == 1
            assert daemon.machine.state is State.LISTENING
        finally:
            daemon.stop()
            assert await exit_code(task, 5) == 0


async def test_a_reload_to_another_mode_restarts_machine_and_session(
    start_realtime_server: StartServer, live_pulse: Any, tmp_path: Path
) -> None:
    path = tmp_path / "pivox.toml"
    async with start_realtime_server() as server:
        write_config(path, server.url, "Be brief.")
        daemon, task = await start(path)
        try:
            await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
            write_config(path, server.url, "Be brief.", mode="push_to_talk")
            daemon.reload()
            await wait_until(lambda: len(server.connections) == 2
                             and daemon.machine.state is State.IDLE, what="push-to-talk idle")
            assert daemon.machine.mode == "push_to_talk" and not daemon.machine.streaming
            update = next(e for e in received(server) if isinstance(e, SessionUpdate))
            assert update.session.turn_detection is None
        finally:
            daemon.stop()
            assert await exit_code(task, 5) == 0


async def test_a_reload_the_led_cannot_show_changes_nothing(
    start_realtime_server: StartServer, live_pulse: Any, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "pivox.toml"
    async with start_realtime_server() as server:
        write_config(path, server.url, "Be brief.")
        daemon, task = await start(path)
        try:
            await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
            config, patterns = daemon.config, dict(daemon.patterns)
            with path.open("a") as file:  # a valid new session, and an LED rate of 400 digits
                file.write(f'[led.patterns]\nidle = "blink:{"9" * 400}"\n')
            text = path.read_text().replace("Be brief.", "Be very brief.")
            path.write_text(text)
            with caplog.at_level(logging.ERROR):
                os.kill(os.getpid(), signal.SIGHUP)
                await wait_until(lambda: "reload rejected" in caplog.text, what="rejected")
            assert f"{path}: led.patterns.idle" in caplog.text
            assert "Exception in callback" not in caplog.text
            assert daemon.config is config and daemon.patterns == patterns
            await asyncio.sleep(0.5)
            assert len(server.connections) == 1
        finally:
            daemon.stop()
            assert await exit_code(task, 5) == 0


async def test_sighup_switches_the_provider_and_applies_gemini_settings(
    start_realtime_server: StartServer, live_pulse: Any, tmp_path: Path
) -> None:
    """One key moves a running device from OpenAI to Gemini; a change in [gemini] alone
    (the voice) is a new session too."""
    from pivox.protocol.gemini import Setup
    from pivox.server import GeminiServer, ServerOptions

    path = tmp_path / "pivox.toml"

    def write_gemini(url: str, voice: str) -> None:
        write_config(path, url, "Be brief.")
        path.write_text(path.read_text().replace(
            "[server]\n", '[server]\nprovider = "gemini"\n') + f'[gemini]\nurl = "{url}"\n'
            f'voice = "{voice}"\n')

    async with start_realtime_server() as openai, GeminiServer(ServerOptions(port=0)) as gemini:
        write_config(path, openai.url, "Be brief.")
        daemon, task = await start(path)
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        write_gemini(gemini.url, "Kore")
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_until(
            lambda: len(gemini.connections) == 1 and daemon.link.session_id is not None,
            what="on gemini")
        write_gemini(gemini.url, "Puck")
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_until(lambda: len(gemini.connections) == 2
                         and gemini.connections[1].setup is not None, what="a new gemini session")
        setups = [c.setup for c in gemini.connections]
        assert all(isinstance(s, Setup) for s in setups)
        assert [s.session.voice for s in setups if s is not None] == ["Kore", "Puck"]
        assert not gemini.connections[1].resumed  # a new configuration: a fresh session
        os.kill(os.getpid(), signal.SIGTERM)
        assert await exit_code(task, 5) == 0
