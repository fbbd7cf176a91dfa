"""Benchmark: MQTT command → effect, beside the broker's own round trip; idle CPU with MQTT.

Run: .venv/bin/python bench/mqtt.py [--samples N] [--rounds N] [--window S] [--warmup S]

Everything runs here: a private mosquitto (tests/fixtures_mqtt.py's recipe, a child process on
a loopback port), the bundled realtime server and a `Daemon` in this process with WAV-file
audio (a silent paced microphone, a speaker that counts what it plays), always-on mode.

- broker round trip: a QoS 1 publish until a subscriber (the same client) receives it;
- mute: the `mute ON` command published → the daemon muted, and → the last
  `input_audio_buffer.append` the server receives (monotonic clock of this process; 0 when
  the last one was sent before the command: mic frames go every 20 ms);
- announce: the `announce` command published → the chime's first bytes taken by the speaker,
  and → the announcement's first reply audio (the device enters SPEAKING);
- idle CPU: `pivox run` processes (push-to-talk, idle, on a private PulseAudio; bench/harness.py)
  with `[mqtt]` off and connected to the broker, `--rounds` rounds of `--window` seconds after
  `--warmup`, alternating order; the difference of the medians is what MQTT costs, as % of one
  core.

Prints median and p99 of each latency, and ratios to the broker round trip. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

import aiomqtt
from tests.fixtures_mqtt import PASSWORD, USER, Broker, new_broker
from tests.pulse import PulseAudio

import harness
from pivox.audio.filedevices import write_wav
from pivox.cli.hardware import file_audio
from pivox.config import load_config
from pivox.core.events import InputAudioAppend
from pivox.core.machine import State
from pivox.daemon import Daemon, Hardware
from pivox.server import RealtimeServer, ServerOptions

DEVICE = "bench"


async def wait(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.001)


def p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, round(0.99 * (len(values) - 1)))]


async def start_daemon(url: str, b: Broker | None, tmp: Path) -> tuple[Daemon, asyncio.Task[int]]:
    silence = tmp / "silence.wav"
    write_wav(silence, bytes(48_000))
    mic, speaker = file_audio(silence, tmp / "out.wav")
    extra = [f"mqtt.host={b.host}", f"mqtt.port={b.port}", f"mqtt.username={USER}",
             f"mqtt.device_id={DEVICE}"] if b is not None else []
    config = load_config(None, [f"server.url={url}", "server.model=", "session.mode=always_on",
                                "control.socket=", "button.enabled=false", "led.enabled=false",
                                *extra])
    daemon = Daemon(config, Hardware(open_microphone=mic, open_speaker=speaker,
                                     open_button=None, open_led=None))
    task = asyncio.create_task(daemon.run())
    await wait(lambda: daemon.link.up and daemon.machine.state is State.LISTENING)
    if b is not None:
        await wait(lambda: daemon.doors.mqtt is not None and daemon.doors.mqtt.connected)
    return daemon, task


async def latencies(args: argparse.Namespace, b: Broker, tmp: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"broker round trip": [], "mute → muted": [],
                                   "mute → last append": [],
                                   "announce → chime at the speaker": [],
                                   "announce → reply audio": []}
    async with RealtimeServer(ServerOptions(port=0, reply="ramp", reply_ms=300,
                                            speed=4.0)) as server:
        daemon, task = await start_daemon(server.url, b, tmp)
        base = f"pivox/{DEVICE}"
        async with aiomqtt.Client(b.host, b.port, username=USER, password=PASSWORD) as c:
            await c.subscribe("bench/echo", qos=1)
            for n in range(args.samples):
                sent = time.monotonic()
                await c.publish("bench/echo", str(n), qos=1)
                async for _ in c.messages:
                    break
                out["broker round trip"].append((time.monotonic() - sent) * 1e3)
            for _ in range(args.samples):
                sent = time.monotonic()
                await c.publish(f"{base}/mute", "ON", qos=1)
                await wait(lambda: daemon.machine.muted)
                out["mute → muted"].append((time.monotonic() - sent) * 1e3)
                await asyncio.sleep(0.2)  # appends in flight land
                record = server.connections[-1].received
                last = max(t for t, e in record if isinstance(e, InputAudioAppend))
                out["mute → last append"].append(max(0.0, last - sent) * 1e3)
                await c.publish(f"{base}/mute", "OFF", qos=1)
                await wait(lambda: not daemon.machine.muted)
            for _ in range(max(1, args.samples // 4)):
                speaker: Any = daemon.audio.speaker
                before = speaker.audible
                sent = time.monotonic()
                await c.publish(f"{base}/announce", "Front door opened", qos=1)
                await wait(lambda s=speaker, n=before: s.audible > n)
                out["announce → chime at the speaker"].append((time.monotonic() - sent) * 1e3)
                await wait(lambda: daemon.machine.state is State.SPEAKING)
                out["announce → reply audio"].append((time.monotonic() - sent) * 1e3)
                await wait(lambda: daemon.machine.state is State.LISTENING)
        daemon.stop()
        await task
    return out


def idle_cpu(args: argparse.Namespace, b: Broker, tmp: Path) -> dict[str, harness.Scenario]:
    """`pivox run` (push-to-talk, idle) on a private PulseAudio, `[mqtt]` off vs connected."""
    names = ("pivox run idle, mqtt off", "pivox run idle, mqtt connected")
    out = {name: harness.Scenario(name) for name in names}
    server = harness.ServerThread(ServerOptions(port=0, reply="ramp", speed=1.0))
    mqtt = (f'[mqtt]\nhost = "{b.host}"\nport = {b.port}\nusername = "{USER}"\n'
            f'device_id = "{DEVICE}"\n')
    order = []
    for name, extra in zip(names, ("", mqtt), strict=True):
        config = tmp / f"{len(order)}.toml"
        config.write_text(harness.pivox_config(server.url, mode="push_to_talk") + extra)
        order.append((name, harness.pivox_command(config)))
    try:
        with PulseAudio() as pulse:
            env = {**pulse.env, "PIVOX_MQTT_PASSWORD": PASSWORD}
            for r in range(args.rounds):
                harness.measure_round(r, order, out, env, server, args)
    finally:
        server.close()
    return out


def report(lat: dict[str, list[float]], cpu: dict[str, harness.Scenario],
           args: argparse.Namespace) -> None:
    base = statistics.median(lat["broker round trip"])
    print(f"{'latency':36} {'median ms':>10} {'p99 ms':>8} {'x broker':>9}  n")
    for name, values in lat.items():
        median = statistics.median(values)
        print(f"{name:36} {median:10.2f} {p99(values):8.2f} {median / base:9.1f}  {len(values)}")
    harness.print_scenarios(cpu, args, ("cpu", "rss"), "pivox run, push-to-talk, idle")
    off, on = (s.median("cpu") for s in cpu.values())
    print(f"MQTT connected costs {on - off:+.2f} % of one core (medians; target <= +0.2 %)")


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        b = new_broker(tmp)
        try:
            os.environ["PIVOX_MQTT_PASSWORD"] = PASSWORD
            lat = await latencies(args, b, tmp)
            cpu = await asyncio.to_thread(idle_cpu, args, b, tmp)
        finally:
            b.stop()
    report(lat, cpu, args)


def main() -> None:
    args = harness.arguments(__doc__, samples=(40, "latency samples per kind"),
                             **harness.WINDOW)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
