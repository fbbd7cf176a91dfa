"""Wake-word mode end to end: generated speech into PulseAudio's pipe source, the daemon on
real PyAudio, real websockets to the bundled server, which records every append it received.

The echo canceller (on by default) changes the samples a little, so the audio the server
received is located in what was played by cross-correlation, and compared by normalised
correlation.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from pivox.audio.wake import earcon
from pivox.core.events import InputAudioAppend, InputAudioClear, ResponseCancel, SessionUpdate
from pivox.core.machine import State
from pivox.server.faults import parse_fault
from tests.daemon_harness import daemon_config, kinds, received, running, wait_until
from tests.fixtures_server import StartServer
from tests.gpio_double import GpioDouble
from tests.pulse import MicWriter, PulseAudio
from tests.wake_corpus import needs_espeak, other_speech, say, silence, wake_then

pytestmark = needs_espeak

MS = 48  # bytes per millisecond of 24 kHz PCM16
OTHER_SPEECH_S = 60


def appended(server: Any, index: int = -1) -> list[bytes]:
    """The audio of every append one connection received, in order."""
    return [e.audio for e in received(server, index) if isinstance(e, InputAudioAppend)]


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, np.int16).astype(np.float64)


def locate(audio: bytes, played: bytes) -> int:
    """Byte offset in `played` at which `audio` starts (may be negative: audio from before)."""
    a, p = samples(audio), samples(played)
    n = 1 << (len(a) + len(p)).bit_length()
    xcorr = np.fft.irfft(np.fft.rfft(p, n) * np.conj(np.fft.rfft(a, n)), n)
    lag = int(np.argmax(xcorr))
    return 2 * (lag if lag < n // 2 else lag - n)


def similarity(x: bytes, y: bytes) -> float:
    """Normalised correlation of two equally long stretches of PCM (1.0: the same shape)."""
    a, b = samples(x), samples(y)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def wake_config(url: str, *extra: str) -> Any:
    return daemon_config(url, "wake_word", "session.wake_listen_s=4", *extra)


async def test_wake_word_sends_pre_roll_then_the_whole_command(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: MicWriter
) -> None:
    utterance = wake_then("what time is it")
    async with start_realtime_server(reply_ms=400) as server, running(
        wake_config(server.url), gpio_double
    ) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        mic.play(silence(300) + utterance.pcm + silence(800))
        await wait_until(lambda: daemon.stats["turns"] == 1, 15, what="a turn played out")
        events = received(server)
        assert kinds(events)[:3] == [SessionUpdate, InputAudioClear, InputAudioAppend]
        audio = appended(server)
        assert len(audio[0]) == 500 * MS  # the pre-roll, in one append
        sent = b"".join(audio)
        start = locate(sent, utterance.pcm)
        # the pre-roll starts inside the wake word, and the command is sent from its start
        assert start < utterance.wake_end - 100 * MS
        at = utterance.command_start
        first_word = utterance.pcm[at:at + 300 * MS]
        assert similarity(sent[at - start:at - start + len(first_word)], first_word) > 0.9
        assert "listening" in led.states and led.states[led.states.index("listening") - 1] == (
            "idle")


async def test_the_earcon_plays_when_asked(
    start_realtime_server: StartServer, gpio_double: GpioDouble, live_pulse: PulseAudio,
    mic: MicWriter,
) -> None:
    async with start_realtime_server(reply_ms=400) as server, running(
        wake_config(server.url, "session.wake_earcon=true"), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        with live_pulse.recording() as recording:
            mic.play(wake_then("what time is it").pcm + silence(800))
            await wait_until(lambda: daemon.stats["turns"] == 1, 15, what="a turn")
            played = recording.stop()
        chime = earcon()
        at = locate(chime, played)  # where the chime is in the monitor recording
        assert similarity(played[at:at + len(chime)], chime) > 0.9


async def test_a_minute_of_other_speech_sends_nothing(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: MicWriter
) -> None:
    """No wake word, no byte of audio leaves the device; then the wake word still works."""
    speech = other_speech(OTHER_SPEECH_S)
    async with start_realtime_server(reply_ms=400) as server, running(
        wake_config(server.url), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        mic.play(speech)
        await wait_until(lambda: not mic.pending, OTHER_SPEECH_S + 30, what="speech played")
        assert appended(server) == [] and daemon.link.stats["appends"] == 0
        assert daemon.machine.state is State.IDLE
        mic.play(wake_then("what time is it").pcm + silence(800))
        await wait_until(lambda: daemon.stats["turns"] == 1, 15, what="the wake word works")
        assert appended(server)


async def test_follow_up_needs_no_wake_word_inside_the_window_and_does_after(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: MicWriter
) -> None:
    question = say("and what day is it")
    async with start_realtime_server(reply_ms=400) as server, running(
        wake_config(server.url, "session.follow_up_s=4"), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        mic.play(wake_then("what time is it").pcm + silence(800))
        await wait_until(lambda: daemon.stats["turns"] == 1, 15, what="the first turn")
        assert daemon.machine.state is State.LISTENING  # the follow-up window
        mic.play(question + silence(800))
        await wait_until(lambda: daemon.stats["turns"] == 2, 15, what="a follow-up turn")
        await wait_until(lambda: daemon.machine.state is State.IDLE, 10, what="window closed")
        sent = len(appended(server))
        mic.play(question + silence(800))
        await wait_until(lambda: not mic.pending, 10, what="question played")
        await wait_until(lambda: daemon.stats["turns"] == 2 and len(appended(server)) == sent,
                         what="nothing more sent")
        assert daemon.machine.state is State.IDLE
        assert isinstance(received(server)[-1], InputAudioClear)  # the window's close


async def test_the_wake_word_over_a_reply_interrupts_it(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: MicWriter
) -> None:
    async with start_realtime_server(reply_ms=8000, speed=1.0) as server, running(
        wake_config(server.url), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        mic.play(wake_then("tell me a long story").pcm + silence(800))
        await wait_until(lambda: daemon.machine.state is State.SPEAKING, 15, what="speaking")
        sent = len(appended(server))
        mic.play(say("Okay Nabu") + silence(300))
        await wait_until(lambda: any(isinstance(e, ResponseCancel) for e in received(server)),
                         10, what="the reply cancelled")
        assert daemon.machine.state in (State.LISTENING, State.USER_SPEAKING)
        assert len(appended(server)) > sent  # the pre-roll went out first


async def test_muted_the_wake_word_sends_nothing(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: MicWriter
) -> None:
    async with start_realtime_server(reply_ms=400) as server, running(
        wake_config(server.url), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        daemon.set_muted(True)
        mic.play(wake_then("what time is it").pcm + silence(800))
        await wait_until(lambda: not mic.pending, 10, what="played")
        assert daemon.machine.state is State.MUTED
        assert appended(server) == [] and daemon.link.stats["appends"] == 0


async def test_server_ending_an_idle_session_reconnects_quietly(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: MicWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with start_realtime_server(reply_ms=400) as server:
        server.inject(parse_fault("close:1000:after=2"))  # after session.created and .updated
        with caplog.at_level(logging.INFO, logger="pivox"):
            async with running(wake_config(server.url), gpio_double) as (daemon, led):
                await wait_until(lambda: len(server.connections) == 2
                                 and daemon.machine.state is State.IDLE and daemon.link.conn
                                 is not None, what="reconnected")
                mic.play(wake_then("what time is it").pcm + silence(800))
                await wait_until(lambda: daemon.stats["turns"] == 1, 15, what="a turn")
        assert server.connections[0].close_code == 1000
        assert "offline" not in led.states
        assert [r.getMessage() for r in caplog.records
                if r.name.startswith("pivox.") and r.levelno >= logging.WARNING] == []
        assert any("while idle; reconnecting" in r.getMessage() for r in caplog.records)


async def test_a_server_that_keeps_closing_gets_the_backoff_and_the_warnings(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: MicWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    closing = (parse_fault("close:1000:after=2"),)
    async with start_realtime_server(reply_ms=400, faults=closing) as server:
        with caplog.at_level(logging.INFO, logger="pivox"):
            async with running(wake_config(server.url), gpio_double) as (_daemon, led):
                await wait_until(lambda: len(server.connections) >= 3, 15, what="3 links")
        quiet = [r for r in caplog.records if "while idle; reconnecting" in r.getMessage()]
        warned = [r for r in caplog.records
                  if r.levelno == logging.WARNING and r.getMessage().startswith("offline:")]
        assert len(quiet) == 1 and warned
        assert "offline" in led.states
