"""The daemon behind its doors: control socket commands and announcements, end to end on
real PulseAudio, real websockets to the bundled server and a real Unix socket."""

from __future__ import annotations

import asyncio
import logging
from array import array
from pathlib import Path
from typing import Any

import pytest

from pivox.cli.control import request
from pivox.core.events import (
    InputAudioAppend,
    ItemTruncate,
    OutOfBandResponse,
    ResponseCancel,
    ResponseCreate,
    UserText,
)
from pivox.core.machine import State
from pivox.daemon import BYTES_PER_MS
from pivox.protocol.gemini import ClientText
from pivox.server import ServerOptions
from pivox.server.gemini import GeminiServer
from tests.daemon_harness import daemon_config, ramp_ms, received, running, wait_until
from tests.fixtures_server import TEST_OPTIONS, StartServer, pcm_silence, pcm_tone
from tests.gpio_double import GpioDouble
from tests.pulse import PulseAudio


def sock(tmp_path: Path) -> str:
    return str(tmp_path / "control.sock")


async def call(path: str, cmd: str, arg: Any = None) -> dict[str, Any]:
    """One socket request, off the loop (the CLI's own client is blocking)."""
    return await asyncio.to_thread(request, path, cmd, arg)


def out_of_band(events: list[Any]) -> list[OutOfBandResponse]:
    return [e for e in events if isinstance(e, OutOfBandResponse)]


async def test_mute_volume_status_over_the_socket(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, tmp_path: Path
) -> None:
    path = sock(tmp_path)
    async with start_realtime_server() as server, running(
        daemon_config(server.url, "always_on", f"control.socket={path}"), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.link.stats["appends"] > 10, what="streaming")
        reply = await call(path, "mute", True)
        assert reply["ok"] and reply["status"]["muted"] and reply["status"]["state"] == "muted"
        await asyncio.sleep(0.1)  # frames already on the wire may still land
        before = len(received(server))
        mic.play(pcm_tone(500))
        await asyncio.sleep(1.0)
        assert [e for e in received(server)[before:] if isinstance(e, InputAudioAppend)] == []
        assert (await call(path, "mute", False))["status"]["state"] == "listening"
        await wait_until(lambda: any(isinstance(e, InputAudioAppend)
                                     for e in received(server)[before:]), what="streaming again")
        assert (await call(path, "volume", 35))["status"]["volume"] == 35
        status = (await call(path, "status"))["status"]
        assert status == {**status, "link": True, "provider": "openai", "volume": 35,
                          "muted": False, "mqtt": "off", "timers": []}
        assert (await call(path, "volume", 101))["ok"] is False


def chime_then_ramp(pcm: bytes) -> tuple[int, float]:
    """(ms of negative samples: the chime is a sine, the ramp never negative; ramp ms)."""
    samples = array("h", pcm)
    negatives = sum(1 for s in samples if s < -1000)
    return negatives * 2 // 48, ramp_ms(pcm)


async def test_an_announcement_is_a_chime_then_an_out_of_band_reply(
    start_realtime_server: StartServer, gpio_double: GpioDouble, live_pulse: PulseAudio,
    mic: Any, tmp_path: Path,
) -> None:
    path = sock(tmp_path)
    async with start_realtime_server(reply_ms=3000, speed=4.0) as server, running(
        daemon_config(server.url, "always_on", f"control.socket={path}"), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        with live_pulse.recording() as recording:
            assert (await call(path, "say", "Front door opened"))["ok"]
            await wait_until(lambda: out_of_band(received(server)), what="out-of-band sent")
            await wait_until(lambda: daemon.machine.state is State.SPEAKING, what="speaking")
            await wait_until(lambda: daemon.machine.state is State.LISTENING, timeout=15,
                             what="back to listening")
            await asyncio.sleep(0.3)
            chime_ms, heard_ms = chime_then_ramp(recording.stop())
        sent = out_of_band(received(server))[0]
        assert sent.text == "Front door opened" and sent.metadata["pivox"] == "announcement"
        assert "verbatim" in sent.instructions or "word for word" in sent.instructions
        assert chime_ms > 50  # the chime played (its negative half-waves)
        assert heard_ms == pytest.approx(3000, abs=5)  # and the whole announcement
        assert not [e for e in received(server) if isinstance(e, UserText | ResponseCreate)]


async def test_barge_in_over_an_announcement_cancels_it_by_id(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, tmp_path: Path,
) -> None:
    """Server VAD does not cancel an out-of-band response: pivox does, with its id, and
    truncates nothing (the item is in no conversation)."""
    path = sock(tmp_path)
    async with start_realtime_server(reply_ms=6000, speed=1.0) as server, running(
        daemon_config(server.url, "always_on", f"control.socket={path}"), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        assert (await call(path, "say", "A long announcement"))["ok"]
        await wait_until(lambda: daemon.machine.state is State.SPEAKING, what="speaking")
        speaking = daemon.doors.announcements.speaking
        assert speaking is not None
        await asyncio.sleep(0.5)
        mic.play(pcm_tone(600))
        await wait_until(lambda: any(isinstance(e, ResponseCancel) for e in received(server)),
                         what="cancel sent")
        cancel = next(e for e in received(server) if isinstance(e, ResponseCancel))
        assert cancel.response_id == speaking
        await asyncio.sleep(0.3)
        assert not [e for e in received(server) if isinstance(e, ItemTruncate)]
        assert daemon.ring.available == 0


async def test_an_announcement_waits_for_a_playing_reply(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, tmp_path: Path,
) -> None:
    path = sock(tmp_path)
    async with start_realtime_server(reply_ms=1500, speed=1.0) as server, running(
        daemon_config(server.url, "always_on", f"control.socket={path}"), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        mic.play(pcm_tone(600) + pcm_silence(100))
        await wait_until(lambda: daemon.machine.state is State.SPEAKING, what="a reply plays")
        turns = daemon.stats["turns"]  # (leftover mic audio of an earlier test may add a turn)
        assert (await call(path, "say", "Dinner is ready"))["ok"]
        assert (await call(path, "status"))["status"]["announcements_queued"] == 1
        await asyncio.sleep(0.5)
        assert out_of_band(received(server)) == []  # not while the reply plays
        assert daemon.stats["turns"] == turns
        await wait_until(lambda: out_of_band(received(server)), timeout=10, what="sent after")
        assert daemon.stats["turns"] == turns + 1  # the reply played out first
        assert not any(isinstance(e, ResponseCancel) for e in received(server))


async def test_the_queue_is_bounded(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, tmp_path: Path,
) -> None:
    path = sock(tmp_path)
    async with start_realtime_server(reply_ms=3000, speed=1.0) as server, running(
        daemon_config(server.url, "push_to_talk", f"control.socket={path}"), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        replies = [await call(path, "say", f"number {n}") for n in range(12)]
        refused = [r for r in replies if not r["ok"]]
        assert refused and all("queue full" in r["error"] for r in refused)
        assert len(refused) <= 12 - 8


async def test_offline_an_announcement_is_a_chime_and_a_log_line(
    start_realtime_server: StartServer, gpio_double: GpioDouble, live_pulse: PulseAudio,
    mic: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = sock(tmp_path)
    async with start_realtime_server() as server:
        url = server.url
    async with running(daemon_config(url, "always_on", f"control.socket={path}"),
                       gpio_double) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.OFFLINE, what="offline")
        await asyncio.sleep(1.5)  # a just-opened PulseAudio stream takes a moment to play
        with live_pulse.recording() as recording, caplog.at_level(logging.WARNING):
            assert (await call(path, "say", "Front door opened"))["ok"]
            await wait_until(lambda: "could not be spoken" in caplog.text, what="log line")
            await asyncio.sleep(0.6)
            chime_ms, _ = chime_then_ramp(recording.stop())
        assert chime_ms > 50
        lines = [r for r in caplog.records if "could not be spoken" in r.getMessage()]
        assert len(lines) == 1 and "Front door opened" in lines[0].getMessage()


async def test_ask_speaks_in_the_conversation_then_listens_without_the_wake_word(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = sock(tmp_path)
    async with start_realtime_server(reply_ms=800, speed=4.0) as server, running(
        daemon_config(server.url, "wake_word", f"control.socket={path}",
                      "session.follow_up_s=5", "session.transcription_model=whisper-1"),
        gpio_double,
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        with caplog.at_level(logging.INFO, logger="pivox.doors"):
            assert (await call(path, "ask", "Did you take your pills?"))["ok"]
            await wait_until(lambda: daemon.machine.state is State.SPEAKING, what="asking")
            await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
            asked = [e for e in received(server) if isinstance(e, UserText)]
            assert len(asked) == 1 and asked[0].text.endswith("Did you take your pills?")
            before = len(received(server))
            mic.play(pcm_tone(700) + pcm_silence(200))  # the answer, no wake word
            await wait_until(lambda: any(isinstance(e, InputAudioAppend)
                                         for e in received(server)[before:]), what="streaming")
            await wait_until(lambda: "answer:" in caplog.text, what="the answer logged")
        appended = sum(len(e.audio) for e in received(server)[before:]
                       if isinstance(e, InputAudioAppend))
        assert appended >= 500 * BYTES_PER_MS
        assert out_of_band(received(server)) == []


async def test_on_gemini_an_announcement_is_a_turn_and_is_told_apart(
    gpio_double: GpioDouble, mic: Any, tmp_path: Path,
) -> None:
    """Gemini Live has no out-of-band response: the announcement goes as a user turn (its
    instructions first) and the next response is taken as its, for barge-in and the queue."""
    path = sock(tmp_path)
    options = ServerOptions(**{**TEST_OPTIONS, "reply_ms": 1500, "speed": 1.0})
    async with GeminiServer(options) as server, running(
        daemon_config(server.url, "push_to_talk", "server.provider=gemini",
                      f"gemini.url={server.url}", f"control.socket={path}"), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        assert (await call(path, "say", "Front door opened"))["ok"]
        await wait_until(lambda: daemon.machine.state is State.SPEAKING, what="spoken")
        assert daemon.doors.announcements.speaking is not None
        texts = [m for _, m in server.connections[-1].received if isinstance(m, ClientText)]
        assert len(texts) == 1 and texts[0].text.endswith("Front door opened")
        assert "word for word" in texts[0].text
        assert (await call(path, "stop"))["ok"]
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="stopped")
        await wait_until(lambda: daemon.doors.announcements.speaking is None, what="ended")
