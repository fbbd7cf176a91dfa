"""Reply playback: the ring and its bounded backlog (pure), and on real PulseAudio: a reply
longer than the ring loses nothing, pre-roll goes first."""

from __future__ import annotations

import asyncio
import base64
import logging
from array import array
from typing import Any

import pytest

from pivox.audio.playback import Playback
from pivox.core.events import InputAudioAppend, InputAudioClear
from pivox.core.machine import State
from pivox.core.ring import AudioRing
from pivox.daemon import BYTES_PER_MS
from pivox.protocol.fastpath import parse_audio_delta
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
        daemon_config(server.url, "push_to_talk", "audio.preroll_ms=300"), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        preroll_ms = daemon.config.audio.preroll_ms
        await asyncio.sleep(preroll_ms / 1000 + 0.2)  # more mic audio than the pre-roll holds
        gpio_double.press(BUTTON)
        await wait_until(lambda: any(isinstance(e, InputAudioAppend) for e in received(server)),
                         what="first append")
        gpio_double.release(BUTTON)
        events = received(server)
        first = [type(e) for e in events].index(InputAudioClear)
        pre_roll = events[first + 1]
        assert isinstance(pre_roll, InputAudioAppend)
        assert len(pre_roll.audio) == preroll_ms * BYTES_PER_MS


# --------------------------------------------------------------------------- Playback (pure)


def drain(ring: AudioRing, n: int) -> bytes:
    out = bytearray(n)
    return bytes(out[: ring.read_into(out)])


def test_what_the_ring_cannot_take_waits_and_goes_on_in_order() -> None:
    ring = AudioRing(4)
    playback = Playback(ring, limit=100)
    playback.write(b"abcdef", "i1", "r1")
    assert (ring.available, playback.pending, playback.direct) == (4, 2, False)
    playback.write(b"gh", "i2", "r1")  # behind the backlog, never before it
    assert ring.available == 4 and playback.pending == 4
    got = drain(ring, 3)
    playback.pump()
    got += drain(ring, 4)
    playback.pump()
    got += drain(ring, 4)
    assert got == b"abcdefgh" and playback.direct
    assert (ring.written("i1"), ring.played("i1"), ring.played("i2")) == (6, 6, 2)


def test_finish_reaches_the_ring_once_the_backlog_is_in_it() -> None:
    ring = AudioRing(4)
    playback = Playback(ring, limit=100)
    playback.write(b"abcdef", "i1", "r1")
    playback.finish()
    drain(ring, 4)
    playback.pump()  # the last 2 bytes go in: now the ring is told no more comes
    drain(ring, 4)  # a short read after the end of the reply: no underrun
    assert ring.underruns == 0


def test_past_the_limit_the_rest_of_the_reply_is_dropped_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ring = AudioRing(4)
    playback = Playback(ring, limit=6)
    with caplog.at_level(logging.WARNING, logger="pivox.playback"):
        for _ in range(5):
            playback.write(b"0123", "i1", "r1")
    assert (ring.available, playback.pending, playback.dropped) == (4, 6, 10)
    assert len(caplog.records) == 1 and "r1" in caplog.records[0].getMessage()


def test_clear_drops_the_backlog_and_the_ring() -> None:
    ring = AudioRing(4)
    playback = Playback(ring, limit=100)
    playback.write(b"abcdef", "i1", "r1")
    assert playback.clear() == 6
    assert (ring.available, playback.pending, playback.direct) == (0, 0, True)


def test_a_response_opens_at_most_max_items_and_the_rest_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    playback = Playback(AudioRing(4), limit=0, max_items=3)
    with caplog.at_level(logging.WARNING, logger="pivox.playback"):
        admitted = [playback.admit("r1", f"i{n}") for n in range(10_000)]
        assert admitted[:3] == [True] * 3 and not any(admitted[3:])
        assert playback.admit("r1", "i0")  # an admitted item stays admitted
        assert playback.admit("r2", "i9")  # a new response starts afresh
    assert len(caplog.records) == 1 and "more than 3 audio items" in caplog.text


def delta_frame(pcm: bytes, *, item: str = "item_1") -> bytes:
    """An audio delta as the server writes it (the fast path reads it)."""
    return (b'{"type":"response.output_audio.delta","event_id":"e","response_id":"resp_1",'
            b'"item_id":"' + item.encode() + b'","output_index":0,"content_index":0,"delta":"'
            + base64.b64encode(pcm) + b'"}')


def test_a_fast_path_chunk_is_queued_after_what_waits() -> None:
    ring = AudioRing(8)
    playback = Playback(ring, 100)
    first, second = parse_audio_delta(delta_frame(b"abcdefghij")), parse_audio_delta(
        delta_frame(b"KLMN"))
    assert first is not None and second is not None
    assert playback.queue(first)  # straight into the ring, 2 bytes wait
    assert (ring.available, playback.pending) == (8, 2)
    assert playback.queue(second)  # behind them, not into the ring's free bytes
    got = drain(ring, 8)
    playback.pump()
    assert got + drain(ring, 8) == b"abcdefghijKLMN"


def test_a_chunk_that_is_not_plain_base64_is_left_to_the_full_decoder() -> None:
    playback = Playback(AudioRing(64), 100)
    chunk = parse_audio_delta(delta_frame(b"abcd").replace(b'"}', b'\\/"}'))
    assert chunk is not None and not playback.queue(chunk)
    assert playback.ring.available == 0 and playback.pending == 0
