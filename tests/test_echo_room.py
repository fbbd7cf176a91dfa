"""The echo room (TESTING.md): the speaker leaks into the mic, and pivox must not hear itself.

A private PulseAudio built by `tests/pulse.py` with `room=True`: the mic is a room into which
the speaker's output loops back 30 ms late at a set level, and the user's voice (the paced
pipe source) is mixed in. `pivox run` (always-on, in process) talks to the bundled server
replying with espeak-ng speech in real time. A self-barge-in is a `response.cancel` the
server receives: the daemon sends one only when it heard speech over its own reply.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from pivox.audio.aec import QUIET_MS
from pivox.audio.echotest import measure_echo
from pivox.core.events import ResponseCancel
from pivox.core.machine import State
from pivox.server.voice import speech
from tests.daemon_harness import daemon_config, received, running, wait_until
from tests.fixtures_server import StartServer
from tests.gpio_double import GpioDouble
from tests.pulse import PulseAudio

HEARD_TRIES = 4
QUIET_S = 60
REPLIES = 20
TRIES = 10
SERVER = {"speed": 1.0, "reply": "speech"}


@pytest.fixture(scope="module")
def room() -> Iterator[PulseAudio]:
    with PulseAudio(room=True) as server:
        yield server


@pytest.fixture(scope="module")
def question() -> bytes:
    pcm = speech("What time is it?")
    assert pcm is not None, "espeak-ng is needed (apt-get install espeak-ng)"
    return pcm


def cancels(server: Any) -> int:
    return sum(isinstance(e, ResponseCancel) for e in received(server))


def config(url: str, *extra: str) -> Any:
    return daemon_config(url, "always_on", "button.enabled=false", *extra)


async def speak(room: PulseAudio, daemon: Any, question: bytes) -> None:
    """Speak `question` once the device listens, again if it was not heard: a room sink that
    has just started passes nothing for a second or two (PulseAudio's null sink)."""
    assert room.mic is not None and room.mic.alive
    await wait_until(lambda: daemon.machine.state is State.LISTENING, 10, "listening")
    for _ in range(HEARD_TRIES):
        room.mic.play(question)
        with contextlib.suppress(TimeoutError):
            await wait_until(lambda: daemon.machine.state is not State.LISTENING, 4, "heard")
            return
    raise AssertionError(f"the question was not heard in {HEARD_TRIES} tries")


async def ask(room: PulseAudio, daemon: Any, server: Any, question: bytes, turns: int) -> None:
    """Speak `question`; wait until its reply has played out, or was cancelled."""
    await speak(room, daemon, question)
    await wait_until(lambda: daemon.stats["turns"] >= turns or cancels(server) > 0, 20,
                     f"turn {turns} played out")


async def test_without_echo_cancellation_the_device_interrupts_itself(
    room: PulseAudio, start_realtime_server: StartServer, gpio_double: GpioDouble,
    question: bytes,
) -> None:
    """The failure the canceller exists for, reproduced: at -6 dB every reply is cut short."""
    room.set_echo_db(-6)
    async with start_realtime_server(**SERVER) as server, running(
        config(server.url, "audio.echo_cancellation=false"), gpio_double
    ) as (daemon, _):
        await speak(room, daemon, question)
        await wait_until(lambda: cancels(server) >= 3, 20, "self-barge-ins")
        assert daemon.stats["turns"] == 0


@pytest.mark.parametrize("echo_db", [-6, 0])
async def test_with_echo_cancellation_replies_play_out(
    room: PulseAudio, start_realtime_server: StartServer, gpio_double: GpioDouble,
    question: bytes, echo_db: int,
) -> None:
    """20 replies in a row, each completed, not one self-barge-in."""
    room.set_echo_db(echo_db)
    async with start_realtime_server(**SERVER) as server, running(
        config(server.url), gpio_double
    ) as (daemon, _):
        for turn in range(1, REPLIES + 1):
            await ask(room, daemon, server, question, turn)
            far = daemon.audio.far_end
            assert cancels(server) == 0, (f"self-barge-in by reply {turn} (far end: level "
                                          f"{far.level}, skipped {far.skipped}, speaker stalls "
                                          f"{daemon.audio.stalls})")
        assert daemon.stats["turns"] == REPLIES


@pytest.mark.parametrize("echo_db", [-6, 0])
async def test_the_first_reply_after_a_long_silence_plays_out(
    room: PulseAudio, start_realtime_server: StartServer, gpio_double: GpioDouble,
    question: bytes, echo_db: int,
) -> None:
    """After a minute of silence (echo cancellation asleep for its last 40 s) the next reply,
    whose start AEC3 meets with the filter it kept, completes without a self-barge-in."""
    room.set_echo_db(echo_db)
    async with start_realtime_server(**SERVER) as server, running(
        config(server.url), gpio_double
    ) as (daemon, _):
        await ask(room, daemon, server, question, 1)
        canceller = daemon.capture.canceller
        bypassed = canceller.bypassed
        far = daemon.audio.far_end
        before = (far.skipped, far.reanchored, daemon.audio.stalls, loopback_delay_ms(room))
        await asyncio.sleep(QUIET_S)
        # most of its 20 ms frames past QUIET_MS
        assert canceller.bypassed - bypassed >= (QUIET_S - QUIET_MS // 1000) * 50 // 2
        after = (far.skipped, far.reanchored, daemon.audio.stalls, loopback_delay_ms(room))
        await ask(room, daemon, server, question, 2)
        assert cancels(server) == 0, (before, after, (far.skipped, far.reanchored,
                                                      daemon.audio.stalls, loopback_delay_ms(room)))
        assert daemon.stats["turns"] == 2


async def test_the_user_still_barges_in_over_a_reply(
    room: PulseAudio, start_realtime_server: StartServer, gpio_double: GpioDouble,
    question: bytes,
) -> None:
    """Double talk: the user, as loud as the echo, speaks 0.5 s into a reply: >= 9 of 10
    replies are interrupted (each interruption is the next question)."""
    room.set_echo_db(-6)
    room.set_user_db(-6)
    try:
        async with start_realtime_server(**SERVER) as server, running(
            config(server.url), gpio_double
        ) as (daemon, _):
            assert room.mic is not None
            await speak(room, daemon, question)
            interrupted = 0
            for _ in range(TRIES):
                await wait_until(lambda: daemon.machine.state is State.SPEAKING, 20, "a reply")
                before = cancels(server)
                await asyncio.sleep(0.5)
                room.mic.play(question)
                try:
                    await wait_until(lambda b=before: cancels(server) > b, 3, "barge-in")
                    interrupted += 1
                except TimeoutError:  # not heard over the reply: ask again after it
                    await speak(room, daemon, question)
            assert interrupted >= 9
    finally:
        room.set_user_db(0)


def loopback_delay_ms(room: PulseAudio) -> float:
    """The echo loopback's delay as PulseAudio measures it now: its sink input's buffer plus
    the room sink's latency (the monitor source adds none); it raises what was configured."""
    index = room.loopback_input("pivox_speaker.monitor")
    current, total = None, 0.0
    for line in room.pactl("list", "sink-inputs").splitlines():
        line = line.strip()
        if line.startswith("Sink Input #"):
            current = int(line.removeprefix("Sink Input #"))
        elif current == index and line.startswith(("Buffer Latency:", "Sink Latency:")):
            total += float(line.split(":")[1].split()[0]) / 1000
    return total


@pytest.mark.parametrize("echo_db", [-6, 0])
def test_check_measures_the_echo_delay_of_the_room(room: PulseAudio, echo_db: int) -> None:
    """`pivox check`'s echo self-test: delay within 10 ms of the loopback's, echo level
    within 1 dB of the loopback's volume, and a verdict that the room will work."""
    room.set_echo_db(echo_db)
    report = measure_echo()
    delay = loopback_delay_ms(room)
    assert report.delay_ms is not None and report.echo_db is not None, report
    assert abs(report.delay_ms - delay) <= 10, (report, delay)
    assert abs(report.echo_db - echo_db) <= 1, report
    assert report.works, report
