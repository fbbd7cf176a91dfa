"""The ring in the echo room (TESTING.md): the chime leaks back into the mic 30 ms late, the
echo canceller (on, the default) takes it out, and the wake word spoken over it dismisses the
ring and opens a turn whose tool call snoozes it ("Okay Nabu, snooze five minutes").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from pivox.core.events import FunctionCallOutput, InputAudioAppend, InputAudioClear
from pivox.core.machine import State
from tests.daemon_harness import daemon_config, received, running, wait_until
from tests.fixtures_server import StartServer
from tests.gpio_double import GpioDouble
from tests.pulse import PulseAudio
from tests.test_echo_room import room  # noqa: F401  (the module-scoped echo room fixture)
from tests.test_timers_e2e import loud
from tests.wake_corpus import needs_espeak, silence, wake_then

pytestmark = needs_espeak
TRIES = 3


async def test_the_wake_word_over_the_chime_silences_it_and_opens_a_turn_that_snoozes(
        room: PulseAudio, start_realtime_server: StartServer,  # noqa: F811
        gpio_double: GpioDouble, tmp_path: Path) -> None:
    assert room.mic is not None
    room.set_echo_db(-6)
    utterance = wake_then("snooze for five minutes")
    async with start_realtime_server(
            reply_ms=300, tool_call="snooze", tool_arguments='{"minutes": 5}') as server, \
            running(daemon_config(server.url, "wake_word", f"timers.state_dir={tmp_path}",
                                  "session.wake_listen_s=4"), gpio_double) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        daemon.timers.call("set_timer", {"seconds": 2, "label": "pasta"})
        await wait_until(lambda: daemon.machine.state is State.RINGING, 4, "ringing")
        before = len(received(server))
        with room.recording() as recording:
            for _ in range(TRIES):  # a room sink that just started may pass nothing at first
                room.mic.play(utterance.pcm + silence(800))
                with contextlib.suppress(TimeoutError):
                    await wait_until(lambda: daemon.machine.state is not State.RINGING, 6,
                                     "woken")
                    break
            woke = time.monotonic()
            await wait_until(lambda: any(isinstance(e, FunctionCallOutput)
                                         for e in received(server)), 15, "snooze answered")
            pcm = recording.stop()
        assert led.states[led.states.index("ringing") + 1] == "listening"
        turn = [type(e) for e in received(server)[before:]]
        assert turn[:2] == [InputAudioClear, InputAudioAppend]  # a turn, pre-roll first
        assert recording.captured_at(int(loud(pcm)[-1])) - woke <= 0.150
        [snoozed] = daemon.timers.schedule.entries
        assert snoozed.label == "pasta" and snoozed.due_mono is not None
        assert snoozed.due_mono - time.monotonic() == pytest.approx(300, abs=20)


async def test_in_always_on_the_chime_s_echo_is_not_heard_as_speech(
        room: PulseAudio, start_realtime_server: StartServer,  # noqa: F811
        gpio_double: GpioDouble, tmp_path: Path) -> None:
    """Always-on streams while ringing (so speech dismisses it): the echo canceller must keep
    the chime's own echo from the server's VAD, or the ring would dismiss itself."""
    room.set_echo_db(-6)
    async with start_realtime_server(reply_ms=300) as server, running(
            daemon_config(server.url, "always_on", f"timers.state_dir={tmp_path}"),
            gpio_double) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        daemon.timers.call("set_timer", {"seconds": 1})
        await wait_until(lambda: daemon.machine.state is State.RINGING, 4, "ringing")
        ringing_since = len(received(server))
        await asyncio.sleep(6)  # four chime periods
        assert daemon.machine.state is State.RINGING
        assert sum(isinstance(e, InputAudioAppend)
                   for e in received(server)[ringing_since:]) > 200  # it streamed meanwhile
