"""Benchmark: wake word end -> first `input_audio_buffer.append` at the server, in one run.

Run: .venv/bin/python bench/wake_latency.py [--trials N]

The daemon (wake_word mode), the bundled server and the GPIO double run in this process on
real PulseAudio and websockets. Each trial plays "Okay Nabu" + a command (tests/wake_corpus.py
`wake_then`, cycling through the verified voices) into the paced pipe source. Times:

- written: when the mic writer wrote the frame holding the wake word's last voiced sample
  into the pipe source (a thread polls the writer's queue every millisecond);
- delivered: when PortAudio's mic callback handed pivox the frame holding that sample (the
  pipe source passes samples unchanged, so the frame is found by content);
- detected: when the daemon's loop fed WakeWordDetected to the machine;
- first append: when the server received the pre-roll append.

Baseline in the same run: the detector's own delay, the audio it needs past the wake word's
end before it fires, from the same PCM processed offline in 20 ms frames. What pivox's
capture path adds is (delivered -> detected) minus that. written -> delivered is the test
rig's pipe and PulseAudio buffering, which a real microphone does not have in that form.
Not a test: nothing passes or fails.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.daemon_harness import daemon_config, running, wait_until
from tests.gpio_double import GpioDouble
from tests.pulse import MicWriter, PulseAudio
from tests.wake_corpus import WAKE_VOICES, Utterance, silence, wake_then

from harness import arguments, spread_ms
from pivox.audio.wake import WakeWordDetector
from pivox.cli.hardware import open_pyaudio_microphone
from pivox.config import Config
from pivox.core import machine as m
from pivox.core.events import InputAudioAppend
from pivox.core.machine import State
from pivox.daemon import Daemon
from pivox.server import RealtimeServer, ServerOptions

LEAD_MS = 300
FRAME = 960


def inherent_delay_s(utterance: Utterance) -> float:
    """Audio the detector needs past the wake word's end before it fires (offline)."""
    pcm = silence(LEAD_MS) + utterance.pcm + silence(800)
    detector = WakeWordDetector()
    for at in range(0, len(pcm), FRAME):
        if detector.process(pcm[at:at + FRAME]):
            return (at + FRAME - len(silence(LEAD_MS)) - utterance.wake_end) / 48000
    raise RuntimeError("the detector missed the wake word offline")


def written_at(mic: MicWriter, remaining: int, out: list[float]) -> threading.Thread:
    """A thread noting when the writer's queue fell to `remaining` bytes or fewer."""

    def watch() -> None:
        deadline = time.monotonic() + 20
        while mic.pending > remaining and time.monotonic() < deadline:
            time.sleep(0.001)
        out.append(time.monotonic())

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def delivered_at(frames: Sequence[tuple[float, bytes]], pcm: bytes, end: int) -> float:
    """When the frame holding byte `end - 1` of `pcm` reached the mic callback."""
    audio = b"".join(f for _, f in frames)
    at = audio.rfind(pcm[end - FRAME:end])
    if at < 0:
        raise RuntimeError("the wake word's end never reached the mic callback")
    last = at + FRAME - 1
    for t, frame in frames:
        if last < len(frame):
            return t
        last -= len(frame)
    raise AssertionError("unreachable")


async def trials(pulse: PulseAudio, count: int) -> dict[str, list[float]]:
    """Run `count` wake words; per trial the three intervals and the inherent delay."""
    mic = pulse.mic
    assert mic is not None
    out: dict[str, list[float]] = {"written_to_delivered": [], "delivered_to_append": [],
                                   "delivered_to_detected": [], "detected_to_append": [],
                                   "inherent": [], "misses": []}
    detected: list[float] = []
    misses: list[int] = []
    frames: deque[tuple[float, bytes]] = deque(maxlen=500)

    def open_microphone(config: Config, on_frame: Callable[[bytes], None]) -> Any:
        def timed(frame: bytes) -> None:  # PortAudio's thread; deque.append is atomic
            frames.append((time.monotonic(), frame))
            on_frame(frame)

        return open_pyaudio_microphone(config, timed)

    class MarkedDaemon(Daemon):
        def _feed(self, inp: Any) -> None:
            if isinstance(inp, m.WakeWordDetected):
                detected.append(time.monotonic())
            super()._feed(inp)

    gpio = GpioDouble()
    async with RealtimeServer(ServerOptions(port=0, speed=0.0, reply="ramp",
                                            reply_ms=200)) as server:
        config = daemon_config(server.url, "wake_word", "session.follow_up_s=0",
                               "log.level=warning")
        async with running(config, gpio, daemon_class=MarkedDaemon,
                           open_microphone=open_microphone) as (daemon, _led):
            await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
            await asyncio.sleep(2.0)  # past the pipe source's start-up burst
            for i in range(count):
                utterance = wake_then("what time is it", *WAKE_VOICES[i % len(WAKE_VOICES)])
                print(f"trial {i + 1}/{count} ...", file=sys.stderr, flush=True)
                pcm = silence(LEAD_MS) + utterance.pcm + silence(800)
                end_sample = len(silence(LEAD_MS)) + utterance.wake_end
                ends: list[float] = []
                mic.wait_played(5)
                since = time.monotonic()
                watcher = written_at(mic, len(pcm) - end_sample, ends)
                mic.play(pcm)
                try:
                    await wait_until(lambda s=since: any(
                        t > s and isinstance(e, InputAudioAppend)
                        for t, e in server.connections[-1].received), 10, what="append")
                except TimeoutError:  # e.g. PulseAudio stalled and the daemon reopened audio
                    print("  no append: the wake word was not heard", file=sys.stderr)
                    misses.append(i)
                    await wait_until(lambda: daemon.machine.state is State.IDLE, 15)
                    continue
                first = next(t for t, e in server.connections[-1].received
                             if t > since and isinstance(e, InputAudioAppend))
                watcher.join()
                await asyncio.sleep(0.2)
                try:
                    delivered = delivered_at([f for f in frames if f[0] > since], pcm,
                                             end_sample)
                except RuntimeError as exc:  # the stream was reopened mid-utterance
                    print(f"  skipped: {exc}", file=sys.stderr)
                    misses.append(i)
                    await wait_until(lambda: daemon.machine.state is State.IDLE, 15)
                    continue
                out["written_to_delivered"].append(delivered - ends[0])
                out["delivered_to_append"].append(first - delivered)
                out["delivered_to_detected"].append(detected[-1] - delivered)
                out["detected_to_append"].append(first - detected[-1])
                out["inherent"].append(inherent_delay_s(utterance))
                await wait_until(lambda: daemon.machine.state is State.IDLE, 15,
                                 what="idle again")
                await asyncio.sleep(0.5)
    out["misses"] = [float(i) for i in misses]
    return out


def main() -> None:
    """Parse the arguments, run, print."""
    args = arguments(__doc__, trials=10)
    with PulseAudio() as pulse:
        out = asyncio.run(trials(pulse, args.trials))
    added = [a - b for a, b in zip(out["delivered_to_detected"], out["inherent"], strict=True)]
    print(f"{args.trials} wake words ({len(WAKE_VOICES)} espeak-ng voices), PulseAudio pipe "
          f"source; {len(out['misses'])} not heard (audio stalls: see the log above)")
    print("wake word end delivered by the mic callback -> first append at the server: "
          f"{spread_ms(out['delivered_to_append'])}")
    print(f"  delivered -> detected on the loop: {spread_ms(out['delivered_to_detected'])}")
    print(f"  detected -> append at the server:  {spread_ms(out['detected_to_append'])}")
    print(f"baseline, the detector's own delay (offline, audio time): {spread_ms(out['inherent'])}")
    print(f"added by pivox's capture path (delivered -> detected minus the detector's delay): "
          f"{spread_ms(added)}")
    print(f"test rig: written into the pipe -> delivered: {spread_ms(out['written_to_delivered'])}")


if __name__ == "__main__":
    main()
