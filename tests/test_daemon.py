"""End to end: the daemon on real PulseAudio, real websockets to the bundled server, GPIO double.

The mic is PulseAudio's pipe source fed by a paced writer; the speaker is a null sink whose
monitor is recorded. Replies are "ramp" audio whose samples encode their own position, so
the recording tells exactly how much of a reply reached the sink.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pivox.core.events import (
    InputAudioAppend,
    InputAudioClear,
    InputAudioCommit,
    ItemTruncate,
    ResponseCancel,
    ResponseCreate,
)
from pivox.core.machine import State
from pivox.daemon import BYTES_PER_MS
from pivox.net.secrets import ApiKey
from pivox.protocol import fastpath
from pivox.server.faults import parse_fault
from tests.daemon_harness import (
    BUTTON,
    LED_PIN,
    daemon_config,
    kinds,
    ramp_ms,
    received,
    running,
    tail_states,
    wait_until,
)
from tests.fixtures_server import StartServer, pcm_silence, pcm_tone
from tests.gpio_double import GpioDouble
from tests.pulse import PulseAudio


@pytest.mark.parametrize(
    "chunk_ms", [100, 500], ids=["small deltas, pybase64 + copy", "large deltas, in place"]
)
async def test_push_to_talk_turn(start_realtime_server: StartServer, gpio_double: GpioDouble,
                                 live_pulse: PulseAudio, mic: Any, chunk_ms: int,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole turn; the reply's deltas are decoded into the ring by either path."""
    in_place: list[int] = []  # PCM bytes of each delta decoded in place
    decode = fastpath.decode_span_into
    if decode is not None:

        def counted(*args: Any) -> int:
            in_place.append(decode(*args))
            return in_place[-1]

        monkeypatch.setattr(fastpath, "decode_span_into", counted)
    async with start_realtime_server(reply_ms=800, speed=4.0, chunk_ms=chunk_ms) as server, running(
        daemon_config(server.url, "push_to_talk"), gpio_double
    ) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        with live_pulse.recording() as recording:
            mic.play(pcm_tone(900))
            gpio_double.press(BUTTON)
            await asyncio.sleep(1.0)
            gpio_double.release(BUTTON)
            await wait_until(lambda: daemon.stats["turns"] == 1, what="a turn played out")
            await asyncio.sleep(0.3)
        events = received(server)
        turn = events[[type(e) for e in events].index(InputAudioClear):]
        assert kinds(turn) == [InputAudioClear, InputAudioAppend, InputAudioCommit,
                               ResponseCreate]
        appended = sum(len(e.audio) for e in turn if isinstance(e, InputAudioAppend))
        assert appended >= 900 * BYTES_PER_MS  # the held second, pre-roll included
        assert tail_states(led, 5) == ["idle", "listening", "thinking", "speaking", "idle"]
        assert ramp_ms(recording.stop()) == pytest.approx(800, abs=1)
        duties = [duty for _, duty in gpio_double.duty_history(LED_PIN)]
        assert duties[-1] == pytest.approx(10)  # idle is dim
    if decode is not None:  # the 500 ms delta, not the 300 ms rest
        assert in_place == ([] if chunk_ms == 100 else [500 * BYTES_PER_MS])


async def test_always_on_turn_follows_server_vad(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any
) -> None:
    async with start_realtime_server(reply_ms=400) as server, running(
        daemon_config(server.url, "always_on"), gpio_double
    ) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        mic.play(pcm_tone(600) + pcm_silence(100))
        await wait_until(lambda: daemon.stats["turns"] == 1, what="a turn played out")
        assert tail_states(led, 5) == [
            "listening", "user_speaking", "thinking", "speaking", "listening"]
        assert not any(isinstance(e, InputAudioCommit) for e in received(server))


async def test_barge_in_truncates_at_what_was_heard(
    start_realtime_server: StartServer, gpio_double: GpioDouble, live_pulse: PulseAudio,
    mic: Any,
) -> None:
    async with start_realtime_server(reply_ms=5000, speed=1.0) as server, running(
        daemon_config(server.url, "always_on"), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        with live_pulse.recording() as recording:
            mic.play(pcm_tone(600))
            await wait_until(lambda: daemon.machine.state is State.SPEAKING, what="speaking")
            item = daemon.ring.current_item
            assert item is not None
            await wait_until(lambda: daemon.ring.played(item) > 1000 * BYTES_PER_MS,
                             what="a second played")
            mic.play(pcm_tone(500))
            await wait_until(lambda: any(isinstance(e, ItemTruncate) for e in received(server)),
                             what="truncate sent")
            assert daemon.ring.available == 0
            written_at_cancel = daemon.ring.written(item)
            await asyncio.sleep(0.5)
            heard = ramp_ms(recording.stop())
        events = received(server)
        truncate = next(e for e in events if isinstance(e, ItemTruncate))
        assert truncate.item_id == item
        cancel_at = next(i for i, e in enumerate(events) if isinstance(e, ResponseCancel))
        assert cancel_at < events.index(truncate)
        # a second was handed to the sound card; up to its buffer (~60 ms) was never heard
        assert 900 <= truncate.audio_end_ms < 5000
        assert abs(truncate.audio_end_ms - heard) <= 20
        # no late delta of the cancelled reply reached the ring
        assert daemon.ring.written(item) == written_at_cancel
        assert "error" not in {t for t in server.connections[-1].sent if "truncat" in t}


async def test_reconnects_after_server_error_close(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any
) -> None:
    async with start_realtime_server() as server:
        server.inject(parse_fault("close:1011:after=2"))
        async with running(daemon_config(server.url, "always_on"), gpio_double) as (daemon, led):
            await wait_until(lambda: len(server.connections) == 2
                             and daemon.machine.state is State.LISTENING, what="reconnected")
            assert server.connections[0].close_code == 1011
            assert "offline" in led.states


async def test_reconnects_after_tcp_drop_mid_response(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any
) -> None:
    async with start_realtime_server(reply_ms=2000, speed=1.0) as server:
        server.inject(parse_fault("drop:deltas=3"))
        async with running(daemon_config(server.url, "always_on"), gpio_double) as (daemon, led):
            await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
            mic.play(pcm_tone(600))
            await wait_until(lambda: len(server.connections) == 2
                             and daemon.machine.state is State.LISTENING, 15, what="reconnected")
            assert "speaking" in led.states and "offline" in led.states
            # the session works again: a full turn on the new connection
            mic.play(pcm_tone(600))
            await wait_until(lambda: daemon.stats["turns"] >= 1, 15, what="a turn after")


async def test_bad_key_goes_to_auth_error_without_a_storm(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any
) -> None:
    async with start_realtime_server(api_key="sk-right") as server, running(
        daemon_config(server.url, "always_on"), gpio_double,
        api_key=ApiKey("sk-wrong", source="test"),
    ) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.AUTH_ERROR, what="auth error")
        await asyncio.sleep(3.0)
        assert server.handshakes == 1
        assert led.states[-1] == "auth_error"
        assert daemon.notifier is not None


async def test_no_frames_are_sent_while_muted(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any
) -> None:
    async with start_realtime_server() as server, running(
        daemon_config(server.url, "always_on", "button.long_press_ms=300"), gpio_double
    ) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        await wait_until(lambda: daemon.link.stats["appends"] > 10, what="streaming")
        gpio_double.press(BUTTON)
        await wait_until(lambda: daemon.machine.state is State.MUTED, what="muted")
        gpio_double.release(BUTTON)
        await asyncio.sleep(0.1)  # frames already on the wire may still land
        before = len(received(server))
        mic.play(pcm_tone(800))
        await asyncio.sleep(1.5)
        assert [e for e in received(server)[before:] if isinstance(e, InputAudioAppend)] == []
        assert led.states[-1] == "muted"
        gpio_double.press(BUTTON)
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="unmuted")
        gpio_double.release(BUTTON)
        await wait_until(lambda: any(isinstance(e, InputAudioAppend)
                                     for e in received(server)[before:]), what="streaming again")
