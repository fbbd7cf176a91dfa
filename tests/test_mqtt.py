"""MQTT with a real mosquitto: discovery, availability, commands, the household, outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from pivox.audio.filedevices import write_wav
from pivox.cli.hardware import file_audio
from pivox.control.discovery import Topics
from pivox.core.events import InputAudioAppend, OutOfBandResponse, UserText
from pivox.core.machine import State
from tests.daemon_harness import daemon_config, ramp_ms, received, running, wait_until
from tests.fixtures_mqtt import Broker
from tests.fixtures_server import StartServer, pcm_silence, pcm_tone
from tests.gpio_double import GpioDouble
from tests.pulse import PulseAudio

DEVICE = "kitchen"
TOPICS = Topics(base="pivox", device_id=DEVICE, discovery_prefix="homeassistant")
REQUIRED = {  # Home Assistant's MQTT platforms: keys each must carry (TESTING.md)
    "sensor": ("state_topic",), "binary_sensor": ("state_topic",),
    "event": ("state_topic", "event_types"), "switch": ("command_topic",),
    "number": ("command_topic",), "select": ("command_topic", "options"),
    "text": ("command_topic",), "button": ("command_topic",), "notify": ("command_topic",),
}


@contextlib.asynccontextmanager
async def client(broker: Broker, *topics: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(broker.host, broker.port, username=broker.user,
                              password=broker.password) as c:
        for topic in topics:
            await c.subscribe(topic, qos=1)
        yield c


async def collect(c: aiomqtt.Client, seconds: float) -> dict[str, list[aiomqtt.Message]]:
    """Every message within `seconds`, by topic."""
    got: dict[str, list[aiomqtt.Message]] = {}
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for message in c.messages:
                got.setdefault(str(message.topic), []).append(message)
    return got


async def status_of(c: aiomqtt.Client, predicate: Any, timeout: float = 10) -> dict[str, Any]:
    """The first status message (subscribed) for which `predicate` holds."""
    async with asyncio.timeout(timeout):
        async for message in c.messages:
            if str(message.topic) == TOPICS.status:
                status: dict[str, Any] = orjson.loads(message.payload)  # type: ignore[arg-type]
                if predicate(status):
                    return status
    raise AssertionError("no such status")


def config(url: str, broker: Broker, mode: str = "always_on", device: str = DEVICE,
           *extra: str) -> Any:
    return daemon_config(url, mode, *broker.settings(f"mqtt.device_id={device}"),
                         "control.socket=", *extra)


async def mqtt_connected(daemon: Any) -> None:
    """Wait until the daemon's MQTT door has connected to the broker."""
    await wait_until(lambda: daemon.doors.mqtt is not None and daemon.doors.mqtt.connected,
                     what="mqtt connected")


async def test_discovery_is_retained_and_valid(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, mosquitto: Broker,
) -> None:
    async with start_realtime_server() as server, running(
        config(server.url, mosquitto), gpio_double
    ) as (daemon, _led):
        await mqtt_connected(daemon)
        async with client(mosquitto, "homeassistant/#", "pivox/#") as c:  # after: retained
            got = await collect(c, 1.0)
    configs = {t: orjson.loads(m[0].payload) for t, m in got.items()  # type: ignore[arg-type]
               if t.startswith("homeassistant/")}
    assert all(m[0].retain for t, m in got.items() if t.startswith("homeassistant/"))
    components = {t.split("/")[1] for t in configs}
    assert components == set(REQUIRED)
    assert len(configs) == 12
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    for topic, payload in configs.items():
        component = topic.split("/")[1]
        assert topic == f"homeassistant/{component}/{DEVICE}/{topic.split('/')[3]}/config"
        for key in REQUIRED[component]:
            assert payload.get(key), (topic, key)
        assert "object_id" not in payload
        assert payload["default_entity_id"] == f"{component}.{payload['unique_id']}"
        assert payload["device"]["identifiers"] == [f"pivox_{DEVICE}"]
        assert payload["origin"]["name"] == "pivox"
        assert payload["availability_topic"] == TOPICS.availability
    select = next(p for t, p in configs.items() if "/select/" in t)
    assert "okay_nabu" in select["options"]
    assert got[TOPICS.availability][0].payload == b"online"
    assert got[TOPICS.availability][0].retain
    status = orjson.loads(got[TOPICS.status][-1].payload)  # type: ignore[arg-type]
    assert status["state"] == "listening" and status["link"] is True


async def test_birth_message_republishes_discovery_and_states(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, mosquitto: Broker,
) -> None:
    async with start_realtime_server() as server, running(
        config(server.url, mosquitto), gpio_double
    ) as (daemon, _led):
        await mqtt_connected(daemon)
        async with client(mosquitto, "homeassistant/+/+/+/config", TOPICS.status) as c:
            await collect(c, 0.5)  # the retained ones
            await c.publish("homeassistant/status", "online")
            got = await collect(c, 1.5)
        fresh = [t for t, ms in got.items() if any(not m.retain for m in ms)]
        assert len([t for t in fresh if t.endswith("/config")]) == 12
        assert TOPICS.status in fresh


async def test_mute_switch_and_volume(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, mosquitto: Broker,
) -> None:
    async with start_realtime_server() as server, running(
        config(server.url, mosquitto), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.link.stats["appends"] > 10, what="streaming")
        await mqtt_connected(daemon)
        async with client(mosquitto, TOPICS.status) as c:
            await c.publish(TOPICS.command("mute"), "ON")
            assert (await status_of(c, lambda s: s["muted"]))["state"] == "muted"
            await asyncio.sleep(0.1)  # frames already on the wire may still land
            before = len(received(server))
            mic.play(pcm_tone(500))
            await asyncio.sleep(1.0)
            assert not [e for e in received(server)[before:] if isinstance(e, InputAudioAppend)]
            await c.publish(TOPICS.command("mute"), "OFF")
            await status_of(c, lambda s: not s["muted"])
            await c.publish(TOPICS.command("volume"), "35")
            await status_of(c, lambda s: s["volume"] == 35)
            assert daemon.audio.volume == 35


async def test_announce_reaches_the_server_out_of_band_and_ask_listens(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, mosquitto: Broker,
) -> None:
    async with start_realtime_server(reply_ms=600) as server, running(
        config(server.url, mosquitto, "wake_word", DEVICE,
               "session.transcription_model=whisper-1"), gpio_double
    ) as (daemon, _led):
        await mqtt_connected(daemon)
        async with client(mosquitto, TOPICS.event) as c:
            await c.publish(TOPICS.command("announce"), "Front door opened")
            await wait_until(lambda: any(isinstance(e, OutOfBandResponse)
                                         for e in received(server)), what="out of band")
            await wait_until(lambda: daemon.machine.state is not State.IDLE, what="spoken")
            await wait_until(lambda: daemon.machine.state is State.IDLE, timeout=15, what="idle")
            await c.publish(TOPICS.command("ask"), "Did you take your pills?")
            await wait_until(lambda: any(isinstance(e, UserText) for e in received(server)),
                             what="asked")
            await wait_until(lambda: daemon.machine.state is State.LISTENING, timeout=15,
                             what="listening without the wake word")
            mic.play(pcm_tone(700) + pcm_silence(400))  # the answer
            async with asyncio.timeout(15):
                async for message in c.messages:
                    event = orjson.loads(message.payload)  # type: ignore[arg-type]
                    if event["event_type"] == "answer":
                        break
            assert event["transcript"]


async def test_a_timer_that_rings_is_an_event_for_home_assistant(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, mosquitto: Broker,
    tmp_path: Path,
) -> None:
    async with start_realtime_server() as server, running(
        config(server.url, mosquitto, "always_on", DEVICE, f"timers.state_dir={tmp_path}"),
        gpio_double,
    ) as (daemon, _led):
        await mqtt_connected(daemon)
        async with client(mosquitto, TOPICS.event) as c:
            daemon.timers.call("set_timer", {"seconds": 1, "label": "tea"})
            async with asyncio.timeout(10):
                async for message in c.messages:
                    event = orjson.loads(message.payload)  # type: ignore[arg-type]
                    if event["event_type"] == "timer_rung":
                        break
        assert event["timers"] == ["tea"]
        assert daemon.machine.state is State.RINGING


async def test_an_all_announce_reaches_every_device(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mosquitto: Broker,
    tmp_path: Path,
) -> None:
    """Two devices (WAV-file audio: one PortAudio per process) on one broker both speak."""
    silence = tmp_path / "silence.wav"
    write_wav(silence, bytes(48_000))
    audio = [file_audio(silence, tmp_path / f"out{n}.wav") for n in range(2)]
    async with start_realtime_server(reply_ms=400) as one, start_realtime_server(
            reply_ms=400) as two, running(
        config(one.url, mosquitto, "push_to_talk", "kitchen"), gpio_double,
        open_microphone=audio[0][0], open_speaker=audio[0][1],
    ) as (first, _), running(
        config(two.url, mosquitto, "push_to_talk", "bedroom", "button.pin=22", "led.pin=23"),
        gpio_double,
        open_microphone=audio[1][0], open_speaker=audio[1][1],
    ) as (second, _):
        for d in (first, second):
            await mqtt_connected(d)
        async with client(mosquitto) as c:
            await c.publish("pivox/all/announce", "Dinner is ready")
        for d, server in ((first, one), (second, two)):
            await wait_until(lambda s=server: [e for e in received(s)
                                               if isinstance(e, OutOfBandResponse)],
                             what="both announce")
            await wait_until(lambda d=d: d.audio.speaker.audible >= 400 * 48, timeout=15,
                             what="both speak the announcement")


HOSTILE = [b"\xff\xfe", b"x" * 100_000, b"", b"maybe", b"-5", b"1e999", b"nan",
           b'{"level": 4}', b"\x00" * 10]


async def test_hostile_payloads_on_every_command_topic_are_ignored(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, mosquitto: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with start_realtime_server() as server, running(
        config(server.url, mosquitto, "push_to_talk"), gpio_double
    ) as (daemon, _led):
        await mqtt_connected(daemon)
        door = daemon.doors.mqtt
        assert door is not None
        with caplog.at_level(logging.WARNING, logger="pivox.control.mqtt"):
            async with client(mosquitto) as c:
                for name in ("mute", "volume", "wake_word"):
                    for payload in HOSTILE:
                        await c.publish(TOPICS.command(name), payload)
                for name in ("announce", "ask"):  # any other text is something to say
                    for payload in (b"\xff\xfe", b"x" * 100_000, b"", b"\x00" * 10):
                        await c.publish(TOPICS.command(name), payload)
                for name in ("converse", "stop"):
                    await c.publish(TOPICS.command(name), b"x" * 100_000)
                    await c.publish(TOPICS.command(name), b"\xff")
            expected = 3 * len(HOSTILE) + 2 * 4 + 2 * 2
            await wait_until(lambda: door.stats["ignored"] == expected,
                             what=f"all seen: {door.stats}")
        assert door.stats["commands"] == 0
        assert daemon.machine.state is State.IDLE and not daemon.machine.muted
        assert not any(isinstance(e, OutOfBandResponse) for e in received(server))
        lines = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
        assert lines and max(len(line) for line in lines) < 400
        assert door.connected


async def test_broker_restart_reconnects_and_republishes_without_touching_audio(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, mosquitto: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with start_realtime_server() as server, running(
        config(server.url, mosquitto), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.doors.mqtt is not None, what="mqtt started")
        door = daemon.doors.mqtt
        assert door is not None
        await wait_until(lambda: door.connected, what="mqtt connected")
        sessions = len(server.connections)
        with caplog.at_level(logging.WARNING, logger="pivox.control.mqtt"):
            mosquitto.stop()
            appends = daemon.link.stats["appends"]
            await wait_until(lambda: not door.connected, what="noticed")
            await asyncio.sleep(3)
            assert daemon.link.stats["appends"] > appends + 100  # 3 s of mic went on
            mosquitto.start()  # a fresh broker: retained messages are gone
            await wait_until(lambda: door.connected, timeout=90, what="reconnected")
        outage_lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(outage_lines) == 1
        async with client(mosquitto, "homeassistant/#", TOPICS.availability) as c:
            got = await collect(c, 1.0)
        assert len([t for t in got if t.startswith("homeassistant/")]) == 12
        assert got[TOPICS.availability][0].payload == b"online"
        assert len(server.connections) == sessions and daemon.link.up  # the link never dropped
        assert daemon.ring.underruns == 0 or daemon.machine.state is State.LISTENING


async def test_the_password_never_reaches_a_debug_log(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, mosquitto: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with start_realtime_server() as server, running(
            config(server.url, mosquitto, "always_on", DEVICE, "log.level=debug"), gpio_double
        ) as (daemon, _led):
            await mqtt_connected(daemon)
            async with client(mosquitto) as c:
                await c.publish(TOPICS.command("volume"), "loud")
            await asyncio.sleep(0.5)
    assert any(r.name.startswith("pivox.control.mqtt") for r in caplog.records)
    assert mosquitto.password not in caplog.text


SIGKILLED = """
import asyncio, sys
from pivox.config import load_config
from pivox.control.mqtt import MqttDoor
from tests.control_host import RecordingHost
config = load_config(None, sys.argv[1:])
password = sys.stdin.readline().strip()
door = MqttDoor(config.mqtt, RecordingHost(), device_id="killed", password=password)
asyncio.run(door.run())
"""


async def test_sigkill_leaves_offline_retained(mosquitto: Broker, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", SIGKILLED, *mosquitto.settings()],
                             stdin=subprocess.PIPE, env=env, cwd=Path(__file__).parent.parent)
    assert child.stdin is not None
    child.stdin.write(mosquitto.password.encode() + b"\n")
    child.stdin.close()
    availability = "pivox/killed/availability"
    try:
        async with client(mosquitto, availability) as c:
            async with asyncio.timeout(15):
                async for message in c.messages:
                    if message.payload == b"online":
                        break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(5)
    await asyncio.sleep(0.5)  # the broker sees the socket close and publishes the will
    async with client(mosquitto, availability) as c:
        got = await collect(c, 1.0)
    assert got[availability][-1].payload == b"offline" and got[availability][-1].retain


async def test_a_clean_exit_says_offline(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, mosquitto: Broker,
) -> None:
    async with start_realtime_server() as server, running(
        config(server.url, mosquitto), gpio_double
    ) as (daemon, _led):
        await mqtt_connected(daemon)
    async with client(mosquitto, TOPICS.availability) as c:
        got = await collect(c, 1.0)
    assert got[TOPICS.availability][-1].payload == b"offline"


async def test_a_stalled_broker_never_stalls_the_loop(
    start_realtime_server: StartServer, gpio_double: GpioDouble, mic: Any, mosquitto: Broker,
) -> None:
    """The broker stops answering (SIGSTOP) while the state changes: mic frames keep flowing,
    the loop keeps ticking, and the change is published once the broker is back."""
    async with start_realtime_server() as server, running(
        config(server.url, mosquitto), gpio_double
    ) as (daemon, _led):
        await mqtt_connected(daemon)
        assert mosquitto.process is not None
        mosquitto.process.send_signal(signal.SIGSTOP)
        try:
            appends = daemon.link.stats["appends"]
            daemon.set_volume(20)  # a state change to publish while the broker is stuck
            started = asyncio.get_running_loop().time()
            await asyncio.sleep(2.0)
            late = asyncio.get_running_loop().time() - started - 2.0
            assert late < 0.15  # the loop was never blocked
            assert daemon.link.stats["appends"] >= appends + 80  # 2 s of 20 ms frames
        finally:
            mosquitto.process.send_signal(signal.SIGCONT)
        async with client(mosquitto, TOPICS.status) as c:
            await status_of(c, lambda s: s["volume"] == 20, timeout=30)


RUN_CONFIG = """\
[server]
url = "{url}"
model = ""
[session]
mode = "push_to_talk"
[button]
enabled = false
[led]
enabled = false
[control]
socket = ""
[mqtt]
host = "127.0.0.1"
port = {port}
username = "{user}"
device_id = "{device}"
[log]
journal = "off"
"""


async def test_two_pivox_run_processes_speak_an_all_announce_and_sigkill_leaves_offline(
    start_realtime_server: StartServer, live_pulse: PulseAudio, mosquitto: Broker,
    tmp_path: Path,
) -> None:
    """Two real `pivox run` processes on one broker: an announce on `all` is spoken by both
    (heard at the sink); SIGKILL of one leaves `offline` retained (the will), SIGTERM of the
    other publishes `offline` itself."""
    pivox = Path(sys.executable).parent / "pivox"
    async with start_realtime_server(reply_ms=1000, speed=4.0) as server:
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for device in ("kitchen", "bedroom"):
                conf = tmp_path / f"{device}.toml"
                conf.write_text(RUN_CONFIG.format(url=server.url, port=mosquitto.port,
                                                  user=mosquitto.user, device=device))
                procs[device] = subprocess.Popen(
                    [str(pivox), "run", "--config", str(conf)],
                    env={**live_pulse.env, "PIVOX_MQTT_PASSWORD": mosquitto.password},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            async with client(mosquitto, "pivox/+/availability") as c:
                online: set[str] = set()
                async with asyncio.timeout(30):
                    async for message in c.messages:
                        if message.payload == b"online":
                            online.add(str(message.topic).split("/")[1])
                        if online == {"kitchen", "bedroom"}:
                            break
                with live_pulse.recording() as recording:
                    await c.publish("pivox/all/announce", "Dinner is ready")
                    await wait_until(lambda: len(server.connections) == 2 and all(
                        any(isinstance(e, OutOfBandResponse) for e in received(server, i))
                        for i in (0, 1)), timeout=15, what="both announce")
                    await asyncio.sleep(1.5)
                    heard = recording.stop()
            assert ramp_ms(heard) >= 900  # the spoken announcements reached the sink
            procs["kitchen"].send_signal(signal.SIGKILL)
            procs["bedroom"].send_signal(signal.SIGTERM)
            for proc in procs.values():
                proc.wait(10)
            assert procs["bedroom"].returncode == 0
            await asyncio.sleep(0.5)
            async with client(mosquitto, "pivox/+/availability") as c:
                got = await collect(c, 1.0)
            for device in ("kitchen", "bedroom"):
                last = got[f"pivox/{device}/availability"][-1]
                assert last.payload == b"offline" and last.retain
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
