"""Reply playback on real PulseAudio: back-pressure loses nothing, pre-roll goes first."""

from __future__ import annotations

import asyncio
from array import array
from typing import Any

from pivox.daemon import BYTES_PER_MS
from pivox.events import InputAudioAppend, InputAudioClear
from pivox.machine import State
from tests.daemon_harness import BUTTON, daemon_config, received, running, wait_until
from tests.fixtures_server import StartServer, pcm_tone
from tests.gpio_double import GpioDouble
from tests.pulse import PulseAudio


def ramp_steps(pcm: bytes) -> set[int]:
    """The distinct ramp positions (sample // 8) a recording holds."""
    return {s for s in array("h", pcm) if s > 0}


async def test_a_reply_longer_than_the_ring_plays_whole(
    start_realtime_server: StartServer, gpio_double: GpioDouble, live_pulse: PulseAudio,
    mic: Any,
) -> None:
    """3 s of reply sent at once into a 200 ms ring: the receive loop waits, nothing drops."""
    async with start_realtime_server(reply_ms=3000, speed=0.0) as server, running(
        daemon_config(server.url, "push_to_talk", "audio.ring_ms=200"), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        assert daemon.ring.capacity == 200 * BYTES_PER_MS
        with live_pulse.recording() as recording:
            gpio_double.press(BUTTON)
            mic.play(pcm_tone(400))
            await asyncio.sleep(0.5)
            gpio_double.release(BUTTON)
            await wait_until(lambda: daemon.stats["turns"] == 1, 15, what="the reply played")
            await asyncio.sleep(0.2)
            steps = ramp_steps(recording.stop())
        last = 3000 * 24 // 8 - 1  # ramp sample i is i // 8
        assert steps == set(range(1, last + 1))  # every step of the ramp was heard
        assert daemon.ring.underruns == 0


async def test_a_press_sends_the_pre_roll_first(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any,
) -> None:
    async with start_realtime_server() as server, running(
        daemon_config(server.url, "push_to_talk"), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        await asyncio.sleep(0.5)  # more than 300 ms of mic audio heard before the press
        gpio_double.press(BUTTON)
        await wait_until(lambda: any(isinstance(e, InputAudioAppend) for e in received(server)),
                         what="first append")
        gpio_double.release(BUTTON)
        events = received(server)
        first = [type(e) for e in events].index(InputAudioClear)
        pre_roll = events[first + 1]
        assert isinstance(pre_roll, InputAudioAppend)
        assert len(pre_roll.audio) == 300 * BYTES_PER_MS
