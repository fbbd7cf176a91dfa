"""End to end over both providers: the daemon on real PulseAudio and the GPIO double, talking
to the bundled server in OpenAI Realtime or Gemini Live, switched by `server.provider` alone.

Shared behaviour is one test parametrised over the providers; what only Gemini has (goAway,
session resumption, its 1007 key refusal) is tested on Gemini. Replies are "ramp" audio, so
the sink's recording tells how much of a reply was played.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from pivox.config import Config
from pivox.core.machine import State
from pivox.daemon import BYTES_PER_MS
from pivox.net.secrets import ApiKey
from pivox.protocol.gemini import ActivityEnd, ActivityStart, AudioIn, ToolResponse
from pivox.server import GeminiServer, RealtimeServer, ServerOptions
from tests.daemon_harness import (
    BUTTON,
    daemon_config,
    ramp_ms,
    running,
    tail_states,
    wait_until,
)
from tests.fixtures_server import TEST_OPTIONS, pcm_silence, pcm_tone
from tests.gpio_double import GpioDouble
from tests.pulse import PulseAudio

PROVIDERS = ["openai", "gemini"]


@dataclass
class Served:
    """A running bundled server of one provider, and how the daemon is pointed at it."""

    provider: str
    server: RealtimeServer | GeminiServer

    def config(self, mode: str, *extra: str) -> Config:
        if self.provider == "openai":
            return daemon_config(self.server.url, mode, *extra)
        return daemon_config(self.server.url, mode, "server.provider=gemini",
                             f"gemini.url={self.server.url}", *extra)

    @property
    def connections(self) -> int:
        return len(self.server.connections)

    @property
    def attempts(self) -> int:
        """Connection attempts, refused ones included (OpenAI refuses at the handshake)."""
        server = self.server
        return server.handshakes if isinstance(server, RealtimeServer) else len(
            server.connections)

    def received(self, index: int = -1) -> list[Any]:
        """What one connection received (client events, or Gemini client messages)."""
        return [m for _, m in self.server.connections[index].received]


@asynccontextmanager
async def serve(provider: str, *, go_away_s: float | None = None, time_left_s: float = 2.0,
                **options: Any) -> AsyncIterator[Served]:
    opts = ServerOptions(**{**TEST_OPTIONS, **options})
    server = (GeminiServer(opts, go_away_s=go_away_s, time_left_s=time_left_s)
              if provider == "gemini" else RealtimeServer(opts))
    async with server:
        yield Served(provider, server)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_push_to_talk_turn(provider: str, gpio_double: GpioDouble, live_pulse: PulseAudio,
                                 mic: Any) -> None:
    async with serve(provider, reply_ms=800, speed=4.0) as served, running(
        served.config("push_to_talk"), gpio_double
    ) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        with live_pulse.recording() as recording:
            mic.play(pcm_tone(900))
            gpio_double.press(BUTTON)
            await asyncio.sleep(1.0)
            gpio_double.release(BUTTON)
            await wait_until(lambda: daemon.stats["turns"] == 1, what="a turn played out")
            await asyncio.sleep(0.3)
        assert tail_states(led, 5) == ["idle", "listening", "thinking", "speaking", "idle"]
        assert ramp_ms(recording.stop()) == pytest.approx(800, abs=1)
        if provider == "gemini":  # one activity, 16 kHz audio inside it
            messages = served.received()
            start = messages.index(ActivityStart())
            end = messages.index(ActivityEnd())
            audio = sum(len(m.audio) for m in messages[start:end] if isinstance(m, AudioIn))
            assert audio >= 900 * 32  # the held second at 16 kHz, pre-roll included
            assert all(isinstance(m, AudioIn) for m in messages[start + 1 : end])


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_always_on_turn(provider: str, gpio_double: GpioDouble, mic: Any) -> None:
    async with serve(provider, reply_ms=400) as served, running(
        served.config("always_on"), gpio_double
    ) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        mic.play(pcm_tone(600) + pcm_silence(100))
        await wait_until(lambda: daemon.stats["turns"] == 1, what="a turn played out")
        assert tail_states(led, 5) == [
            "listening", "user_speaking", "thinking", "speaking", "listening"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_barge_in_is_silent_at_once_with_no_late_audio(
    provider: str, gpio_double: GpioDouble, live_pulse: PulseAudio, mic: Any,
) -> None:
    async with serve(provider, reply_ms=5000, speed=1.0) as served, running(
        served.config("always_on"), gpio_double
    ) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        with live_pulse.recording() as recording:
            mic.play(pcm_tone(600))
            await wait_until(lambda: daemon.machine.state is State.SPEAKING, what="speaking")
            item = daemon.ring.current_item
            assert item is not None
            await wait_until(lambda: daemon.ring.played(item) > 1000 * BYTES_PER_MS,
                             what="a second played")
            mic.play(pcm_tone(500))
            await wait_until(lambda: daemon.machine.state is not State.SPEAKING,
                             what="barged in")
            assert daemon.ring.available == 0  # silent at once
            written_at_cancel = daemon.ring.written(item)
            await asyncio.sleep(0.8)
            heard = ramp_ms(recording.stop())
        assert 900 <= heard < 2500
        assert daemon.ring.written(item) == written_at_cancel  # no late delta reached the ring
        assert "user_speaking" in led.states


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_round_trip(provider: str, gpio_double: GpioDouble, mic: Any) -> None:
    async with serve(provider, reply_ms=300, tool_call="get_time") as served, running(
        served.config("push_to_talk"), gpio_double
    ) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        mic.play(pcm_tone(700))
        gpio_double.press(BUTTON)
        await asyncio.sleep(0.6)
        gpio_double.release(BUTTON)
        await wait_until(lambda: daemon.stats["turns"] == 1, what="the tool's answer played")
        assert led.states[-1] == "idle"
        received = served.received()
        if provider == "gemini":
            (response,) = [m for m in received if isinstance(m, ToolResponse)]
            assert response.responses[0][1] == "get_time"
        else:
            assert any(type(m).__name__ == "FunctionCallOutput" for m in received)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_bad_key_goes_to_auth_error_without_a_storm(
    provider: str, gpio_double: GpioDouble, mic: Any
) -> None:
    async with serve(provider, api_key="right") as served, running(
        served.config("always_on"), gpio_double, api_key=ApiKey("wrong", source="test"),
    ) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.AUTH_ERROR, what="auth error")
        await asyncio.sleep(3.0)
        assert served.attempts == 1
        assert led.states[-1] == "auth_error"


@pytest.mark.parametrize(("provider", "remembers"), [
    ("openai", False), ("gemini", True), ("gemini", False),
], ids=["openai", "gemini, handle kept", "gemini, handle forgotten"])
async def test_reconnects_after_the_server_went_away(
    provider: str, remembers: bool, gpio_double: GpioDouble, mic: Any
) -> None:
    """The server dies and comes back on the same port: OFFLINE, then a working session.
    Gemini resumes the session by its handle, or, when the new server does not know the
    handle (refused with 1007), starts a fresh one."""
    async with serve(provider) as served:
        port = served.server.port
        async with running(served.config("always_on"), gpio_double) as (daemon, _led):
            await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
            await served.server.__aexit__(None, None, None)  # the server dies
            await wait_until(lambda: daemon.machine.state is State.OFFLINE, what="offline")
            options = ServerOptions(**{**TEST_OPTIONS, "port": port})
            again = GeminiServer(options) if provider == "gemini" else RealtimeServer(options)
            if isinstance(again, GeminiServer) and remembers:
                assert isinstance(served.server, GeminiServer)
                again.sessions = served.server.sessions
            async with again:
                await wait_until(lambda: daemon.machine.state is State.LISTENING
                                 and daemon.link.session_id is not None, 15, what="reconnected")
                if isinstance(again, GeminiServer):
                    if remembers:
                        assert again.connections[0].resumed
                    else:
                        assert again.connections[0].close_code == 1007
                        assert not again.connections[-1].resumed
                mic.play(pcm_tone(600) + pcm_silence(100))
                await wait_until(lambda: daemon.stats["turns"] == 1, 15, what="a turn after")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_push_to_talk_press_over_a_reply_interrupts_it(
    provider: str, gpio_double: GpioDouble, mic: Any
) -> None:
    async with serve(provider, reply_ms=3000, speed=1.0) as served, running(
        served.config("push_to_talk"), gpio_double
    ) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
        mic.play(pcm_tone(700))
        gpio_double.press(BUTTON)
        await asyncio.sleep(0.6)
        gpio_double.release(BUTTON)
        await wait_until(lambda: daemon.machine.state is State.SPEAKING, what="speaking")
        item = daemon.ring.current_item
        assert item is not None
        await wait_until(lambda: daemon.ring.played(item) > 500 * BYTES_PER_MS, what="playing")
        mic.play(pcm_tone(1000))  # the next question, said while holding
        gpio_double.press(BUTTON)  # barge in
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        assert daemon.ring.available == 0  # silent at once
        written = daemon.ring.written(item)
        await asyncio.sleep(0.6)  # long enough to be a question, and for late audio to come
        gpio_double.release(BUTTON)
        await wait_until(lambda: daemon.stats["turns"] == 1, 15, what="the next turn")
        assert daemon.ring.written(item) == written  # nothing of the cancelled reply came after
        assert led.states[-1] == "idle"
        if isinstance(served.server, GeminiServer):
            assert "serverContent.interrupted" in served.server.connections[0].sent


async def test_gemini_go_away_resumes_the_session_on_a_new_connection_unnoticed(
    gpio_double: GpioDouble, mic: Any
) -> None:
    async with serve("gemini", go_away_s=1.0, time_left_s=5.0) as served, running(
        served.config("always_on"), gpio_double
    ) as (daemon, led):
        # the record exists from the handshake on; the setup (with the handle) a frame later
        await wait_until(lambda: served.connections >= 2
                         and served.server.connections[1].setup is not None, 10,
                         what="a second connection, set up")
        first, second = served.server.connections[:2]
        await first.closed.wait()
        assert first.close_code == 1000  # pivox closed it, ahead of the server
        assert not first.resumed and second.resumed
        assert "offline" not in led.states and led.states.count("connecting") == 1
        mic.play(pcm_tone(600) + pcm_silence(100))
        await wait_until(lambda: daemon.stats["turns"] == 1, 15, what="a turn, resumed")


async def test_gemini_renews_an_aging_connection_while_quiet(
    gpio_double: GpioDouble, mic: Any
) -> None:
    async with serve("gemini") as served, running(
        served.config("push_to_talk", "gemini.reconnect_after_s=1"), gpio_double
    ) as (daemon, led):
        # the record exists from the handshake on; the setup arrives a frame later
        await wait_until(lambda: served.connections >= 2
                         and served.server.connections[1].setup is not None, 10, what="renewed")
        assert served.server.connections[1].resumed
        assert daemon.machine.state is State.IDLE and "offline" not in led.states


@pytest.mark.parametrize(("provider", "style"), [
    ("openai", "server.auth_style=bearer"), ("openai", "server.auth_style=api-key"),
    ("gemini", "gemini.auth_style=header"), ("gemini", "gemini.auth_style=query"),
])
@pytest.mark.parametrize("right", [True, False], ids=["right key", "wrong key"])
async def test_the_key_never_reaches_a_log_line_even_at_debug(
    provider: str, style: str, right: bool, gpio_double: GpioDouble, mic: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = "AIzaSecret-right-123" if right else "AIzaSecret-wrong-456"
    async with serve(provider, api_key="AIzaSecret-right-123") as served, running(
        served.config("always_on", style, "log.level=debug"), gpio_double,
        api_key=ApiKey(key, source="test"),
    ) as (daemon, _led):
        target = State.LISTENING if right else State.AUTH_ERROR
        await wait_until(lambda: daemon.machine.state is target, what=target.value)
    client_lines = [r.getMessage() for r in caplog.records
                    if not r.name.startswith(("websockets.server", "pivox.server"))]
    assert client_lines and not [line for line in client_lines if key in line]


async def test_gemini_speech_over_a_reply_already_generated_cuts_it(
    gpio_double: GpioDouble, mic: Any
) -> None:
    """The server sent the whole reply at once (turnComplete, so no `interrupted` later);
    the user speaks over what the device still plays: the next answer cuts the old one."""
    async with serve("gemini", reply_ms=5000, speed=0.0) as served, running(
        served.config("always_on"), gpio_double
    ) as (daemon, led):
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        mic.play(pcm_tone(600) + pcm_silence(100))
        await wait_until(lambda: daemon.machine.state is State.SPEAKING, what="speaking")
        old = daemon.ring.current_item
        assert old is not None
        await wait_until(lambda: daemon.ring.played(old) > 1000 * BYTES_PER_MS, what="playing")
        assert "serverContent.turnComplete" in served.server.connections[0].sent
        mic.play(pcm_tone(600) + pcm_silence(100))
        await wait_until(lambda: daemon.ring.current_item not in (None, old), 10,
                         what="the new answer plays")
        assert daemon.ring.played(old) < 4000 * BYTES_PER_MS  # cut, not played to its end
        assert "serverContent.interrupted" not in served.server.connections[0].sent
        assert "user_speaking" in led.states[led.states.index("speaking"):]
