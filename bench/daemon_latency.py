"""Benchmark: the daemon's latencies on real PulseAudio, websockets and the GPIO double.

Run: .venv/bin/python bench/daemon_latency.py [--presses N] [--barge-ins N]

Prints medians (and the spread) of, each beside a baseline measured in the same run:

- button down -> first `input_audio_buffer.append` received by the server (push-to-talk,
  pre-roll included); baseline: a bare websockets append's one-way time on the same loopback;
- SpeechStarted received -> the sink's monitor goes silent (always-on barge-in over a ramp
  reply); baseline: the speaker stream's own output latency, audio handed to PortAudio ->
  heard in the monitor, measured on the onsets of the same replies;
- truncate error: `audio_end_ms` sent vs the ramp position the monitor recorded last;
  baseline: the error of "bytes handed minus stream.get_output_latency()".

Not a test: nothing here passes or fails. The daemon, the bundled server and the GPIO double
run in this process (one asyncio loop); the sink monitor is recorded by `parec`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import time
from array import array
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

import orjson
import pybase64
from tests.fixtures_server import pcm_silence, pcm_tone
from tests.gpio_double import GpioDouble
from tests.pulse import SINK, MicWriter, PulseAudio, Recording
from websockets.asyncio.client import connect

from harness import arguments, spread_ms
from pivox.audio.soundcard import Speaker
from pivox.cli.hardware import gpio_button, open_pyaudio_microphone
from pivox.config import Config, load_config
from pivox.core.events import InputAudioAppend, ItemTruncate, ServerEvent, SpeechStarted
from pivox.core.farend import FarEnd
from pivox.core.machine import State
from pivox.core.ring import AudioRing
from pivox.daemon import BYTES_PER_MS, Daemon, Hardware
from pivox.server import RealtimeServer, ServerOptions

BUTTON = 17
RATE = 24000
GAP_SAMPLES = RATE // 10
"""A run of zeros this long (100 ms) separates two replies in the monitor recording."""


class TimedSpeaker(Speaker):
    """The real Speaker, logging per callback what it handed and PortAudio's DAC lead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handed: list[Handed] = []

    def _callback(
        self, in_data: bytes | None, frame_count: int, time_info: dict[str, float], status: int
    ) -> tuple[bytes | None, int]:
        now = time.monotonic()
        out, flag = super()._callback(in_data, frame_count, time_info, status)
        if out:
            body = out.rstrip(b"\0")
            first = (len(out) - len(out.lstrip(b"\0"))) // 2 if body else -1
            last = (len(body) + 1) // 2 - 1
            value = array("h", out[last * 2 : last * 2 + 2])[0] if body else 0
            lead = time_info["output_buffer_dac_time"] - time_info["current_time"]
            self.handed.append(Handed(now, lead, first, last, value, frame_count))
        return out, flag


@dataclass(frozen=True, slots=True)
class Handed:
    """One speaker callback: when, DAC lead (s), first/last nonzero sample and its ramp value."""

    at: float
    lead: float
    first: int
    last: int
    value: int
    frames: int


class TimedRecording(Recording):
    """A monitor recording that also logs (arrival time, total bytes) per chunk read."""

    def __init__(self, env: dict[str, str], device: str) -> None:
        self.marks: list[tuple[float, int]] = []
        super().__init__(env, device)

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        while chunk := self._proc.stdout.read1(65536):
            self._data += chunk
            self.marks.append((time.monotonic(), len(self._data)))

    def heard_at(self, sample: int) -> float:
        """Monotonic time sample `sample` reached this process, minus the samples after it
        in its chunk (the chunk's last sample counts as rendered when it arrived)."""
        end = (sample + 1) * 2
        for at, total in self.marks:
            if total >= end:
                return at - (total - end) / (RATE * 2)
        raise ValueError(f"sample {sample} was not recorded")


class MarkedDaemon(Daemon):
    """The daemon, noting when each button edge and each SpeechStarted reach the loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.speech_started: list[tuple[float, State]] = []
        self.edges: list[float] = []

    def _on_button_edge(self, pressed: bool, at: float) -> None:
        if pressed:
            self.edges.append(time.monotonic())
        super()._on_button_edge(pressed, at)

    async def _dispatch(self, event: ServerEvent) -> None:
        if isinstance(event, SpeechStarted):
            self.speech_started.append((time.monotonic(), self.machine.state))
        await super()._dispatch(event)


@dataclass(frozen=True, slots=True)
class Segment:
    """One reply in the monitor recording: first and last nonzero sample, last ramp value."""

    first: int
    last: int
    value: int


def segments(pcm: bytes) -> list[Segment]:
    """Replies in a recording of ramp audio: nonzero runs split by >= 100 ms of zeros; a run
    that does not restart the ramp (value > 1) continues the previous reply (an underrun)."""
    samples = array("h", pcm)
    out: list[Segment] = []
    i, n = 0, len(samples)
    while i < n:
        if not samples[i]:
            i += 1
            continue
        start, last, zeros = i, i, 0
        while i < n and zeros < GAP_SAMPLES:
            if samples[i]:
                last, zeros = i, 0
            else:
                zeros += 1
            i += 1
        if out and samples[start] > 1:
            out[-1] = Segment(out[-1].first, last, samples[last])
        else:
            out.append(Segment(start, last, samples[last]))
    return out


def ramp_end_ms(value: int) -> float:
    """Milliseconds of a ramp reply up to and including the samples of value `value`."""
    return (value * 8 + 8) / 24


def onsets(handed: Sequence[Handed]) -> list[Handed]:
    """Callbacks that handed the first nonzero audio of a reply (after >= 100 ms of zeros)."""
    out, quiet = [], GAP_SAMPLES
    for h in handed:
        if h.first >= 0 and quiet >= GAP_SAMPLES:
            out.append(h)
        quiet = h.frames - 1 - h.last if h.first >= 0 else quiet + h.frames
    return out


def last_handed(handed: Sequence[Handed], before: float, after: float) -> Handed:
    """The last callback in (after, before) that handed nonzero audio."""
    return [h for h in handed if after < h.at < before and h.first >= 0][-1]


def bench_config(url: str, mode: str) -> Config:
    """Defaults pointed at the local server; the GPIO double's button, no LED."""
    return load_config(None, [
        f"server.url={url}", "server.model=", f"session.mode={mode}",
        "session.vad_silence_duration_ms=300", f"button.pin={BUTTON}", "led.enabled=false",
        "log.level=warning",
    ])


@contextlib.asynccontextmanager
async def running(daemon: Daemon) -> AsyncIterator[Daemon]:
    """Run `daemon` on this loop until the block ends."""
    task = asyncio.create_task(daemon.run())
    try:
        yield daemon
    finally:
        daemon.stop()
        await asyncio.wait({task}, timeout=10)


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `predicate` every 5 ms; raise TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def appends_after(server: RealtimeServer, index: int, since: float) -> list[float]:
    """Arrival times of the appends connection `index` received after `since`."""
    return [t for t, e in server.connections[index].received
            if t > since and isinstance(e, InputAudioAppend)]


@dataclass
class Presses:
    """Per press, in seconds: press -> append at the server, press -> edge on the loop."""

    append: list[float]
    edge: list[float]
    one_way: list[float]


async def button_to_append(presses: int) -> Presses:
    """Push-to-talk: press -> first append at the server; and a bare append's one-way time."""
    gpio = GpioDouble()
    hardware = Hardware(open_microphone=open_pyaudio_microphone,
                        open_speaker=lambda c, r, f: TimedSpeaker(r, latency_ms=c.audio.latency_ms,
                                                                   far_end=f),
                        open_button=gpio_button(gpio), open_led=None)
    out = Presses([], [], [])
    async with RealtimeServer(ServerOptions(port=0, speed=0.0, reply="ramp", reply_ms=200)) as srv:
        daemon = MarkedDaemon(bench_config(srv.url, "push_to_talk"), hardware)
        async with running(daemon):
            await wait_until(lambda: daemon.machine.state is State.IDLE)
            await asyncio.sleep(1.0)  # pre-roll filled, streams past their start-up burst
            for _ in range(presses):
                await asyncio.sleep(0.5 + random.random() * 0.02)  # past double-tap windows
                pressed = time.monotonic()
                gpio.press(BUTTON, at=pressed)  # the double's bouncetime runs on `at`
                await wait_until(lambda t=pressed: bool(appends_after(srv, 0, t)), 5)
                out.append.append(appends_after(srv, 0, pressed)[0] - pressed)
                out.edge.append(daemon.edges[-1] - pressed)
                await asyncio.sleep(0.1)
                gpio.release(BUTTON, at=time.monotonic())  # a short press: no reply
        gpio.close()
        out.one_way = await bare_append_one_way(srv, presses)
    return out


async def bare_append_one_way(server: RealtimeServer, count: int) -> list[float]:
    """Send one 20 ms append at a time over plain websockets; time to the server's arrival."""
    frame = orjson.dumps({"type": "input_audio_buffer.append",
                          "audio": pybase64.b64encode(pcm_silence(20)).decode()}).decode()
    out = []
    async with connect(server.url, compression=None) as ws:
        await ws.recv()  # session.created
        index = len(server.connections) - 1
        for _ in range(count):
            await asyncio.sleep(0.02 + random.random() * 0.02)
            sent = time.monotonic()
            await ws.send(frame)
            await wait_until(lambda t=sent: bool(appends_after(server, index, t)), 5)
            out.append(appends_after(server, index, sent)[0] - sent)
    return out


@dataclass
class BargeIns:
    """Per barge-in figures, in seconds (truncate errors in ms)."""

    silence: list[float]
    handed_after: list[float]
    output_latency: list[float]
    truncate_error_ms: list[float]
    naive_error_ms: list[float]


async def barge_ins(pulse: PulseAudio, mic: MicWriter, count: int) -> BargeIns:
    """Always-on: a 5 s ramp reply interrupted by speech ~1 s in, `count` times in a chain."""
    speakers: list[TimedSpeaker] = []

    def open_speaker(config: Config, ring: AudioRing, far_end: FarEnd) -> TimedSpeaker:
        speakers.append(TimedSpeaker(ring, latency_ms=config.audio.latency_ms, far_end=far_end))
        return speakers[-1]

    hardware = Hardware(open_microphone=open_pyaudio_microphone, open_speaker=open_speaker,
                        open_button=None, open_led=None)
    options = ServerOptions(port=0, speed=1.0, reply="ramp", reply_ms=5000)
    async with RealtimeServer(options) as srv:
        daemon = MarkedDaemon(bench_config(srv.url, "always_on"), hardware)
        async with running(daemon):
            await wait_until(lambda: daemon.machine.state is State.LISTENING)
            await asyncio.sleep(1.0)
            recording = TimedRecording(pulse.env, f"{SINK}.monitor")
            await asyncio.sleep(0.5)
            truncates = lambda: [e for _, e in srv.connections[-1].received  # noqa: E731
                                 if isinstance(e, ItemTruncate)]
            mic.play(pcm_tone(400))
            for i in range(count):
                await wait_until(lambda: daemon.machine.state is State.SPEAKING)
                item = daemon.ring.current_item
                assert item is not None
                at = (800 + random.random() * 200) * BYTES_PER_MS
                await wait_until(lambda it=item, b=at: daemon.ring.played(it) > b)
                mic.play(pcm_tone(400))
                await wait_until(lambda n=i + 1: len(truncates()) == n)
            await asyncio.sleep(0.5)
            pcm = recording.stop()
            latency = speakers[0]._stream.get_output_latency()
    return analyse(daemon, speakers[0], recording, pcm, [e.audio_end_ms for e in truncates()],
                   latency)


def analyse(daemon: MarkedDaemon, speaker: TimedSpeaker, recording: TimedRecording, pcm: bytes,
            truncated_ms: list[int], reported_latency: float) -> BargeIns:
    """Match replies in the recording with speaker callbacks and SpeechStarted arrivals."""
    heard = segments(pcm)
    starts = onsets(speaker.handed)
    interrupts = [t for t, state in daemon.speech_started
                  if state is State.SPEAKING]
    n = len(interrupts)
    if len(truncated_ms) != n or not n <= len(heard) == len(starts) <= n + 1:
        raise RuntimeError(f"recorded {len(heard)} replies, handed {len(starts)}, {n} barge-ins, "
                           f"{len(truncated_ms)} truncates: the run is not what it should be")
    out = BargeIns([], [], [], [], [])
    for seg, onset in zip(heard, starts, strict=True):
        handed_at = onset.at + onset.first / RATE  # when its first nonzero sample was handed
        out.output_latency.append(recording.heard_at(seg.first) - handed_at)
    for k, (ss, end_ms) in enumerate(zip(interrupts, truncated_ms, strict=True)):
        seg = heard[k]
        out.silence.append(recording.heard_at(seg.last) + 1 / RATE - ss)
        until = starts[k + 1].at if k + 1 < len(starts) else ss + 0.5
        last = last_handed(speaker.handed, until, starts[k].at)
        out.handed_after.append(last.at - ss)
        out.truncate_error_ms.append(end_ms - ramp_end_ms(seg.value))
        out.naive_error_ms.append(end_ms - reported_latency * 1000 - ramp_end_ms(seg.value))
    return out


async def main_async(args: argparse.Namespace) -> None:
    """Run both parts against one private PulseAudio and print the figures."""
    with PulseAudio() as pulse:
        assert pulse.mic is not None
        p = await button_to_append(args.presses)
        b = await barge_ins(pulse, pulse.mic, args.barge_ins)
    print("button down -> first append on the wire (target <= 30 ms, pre-roll included)")
    print(f"  pivox: press -> append         {spread_ms(p.append)}")
    print(f"    of which press -> edge on the loop (GPIO double thread)  {spread_ms(p.edge)}")
    print(f"  baseline: bare append one-way  {spread_ms(p.one_way)}")
    print(f"  ratio of medians               {ratio(p.append, p.one_way)}")
    print("SpeechStarted -> speaker silent (target <= 20 ms)")
    print(f"  monitor: last sample heard     {spread_ms(b.silence)}")
    print(f"  last reply audio handed - SpeechStarted (<0: before)  {spread_ms(b.handed_after)}")
    print(f"  baseline: handed -> heard      {spread_ms(b.output_latency)}")
    print(f"  ratio of medians               {ratio(b.silence, b.output_latency)}")
    print("truncate audio_end_ms - ramp ms heard in the monitor (target |error| <= 20 ms)")
    print(f"  pivox                          {spread_ms(b.truncate_error_ms, scale=1)}")
    print(f"  baseline: handed - reported output latency  {spread_ms(b.naive_error_ms, scale=1)}")


def ratio(values: Sequence[float], baseline: Sequence[float]) -> str:
    """The ratio of the two medians."""
    return f"{statistics.median(values) / statistics.median(baseline):7.2f}x"


def main() -> None:
    """Parse the arguments and run."""
    asyncio.run(main_async(arguments(__doc__, presses=15, barge_ins=8)))


if __name__ == "__main__":
    main()
