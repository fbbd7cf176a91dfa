"""Benchmark: wake word end -> first `input_audio_buffer.append` at the server, in one run.

Run: .venv/bin/python bench/wake_latency.py [--trials N]

The daemon (wake_word mode), the bundled server and the GPIO double run in this process on
real PulseAudio and websockets. Each trial plays "Okay Nabu" + a command (tests/wake_corpus.py
`wake_then`, cycling through the verified voices) into the paced pipe source. Times:

- wake word end: when the mic writer wrote the frame holding the wake word's last voiced
  sample into the pipe source (a thread polls the writer's queue every millisecond);
- detected: when the daemon's loop fed WakeWordDetected to the machine;
- first append: when the server received the pre-roll append.

Baseline in the same run: the detector's own delay, the audio it needs past the wake word's
end before it fires, from the same PCM processed offline in 20 ms frames. What pivox's
capture path adds is (end -> detected) minus that. Not a test: nothing passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.daemon_harness import daemon_config, running, wait_until
from tests.gpio_double import GpioDouble
from tests.pulse import MicWriter, PulseAudio
from tests.wake_corpus import WAKE_VOICES, Utterance, silence, wake_then

from pivox import machine as m
from pivox.daemon import Daemon
from pivox.events import InputAudioAppend
from pivox.machine import State
from pivox.server import RealtimeServer, ServerOptions
from pivox.wake import WakeWordDetector

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


async def trials(pulse: PulseAudio, count: int) -> dict[str, list[float]]:
    """Run `count` wake words; per trial the three intervals and the inherent delay."""
    mic = pulse.mic
    assert mic is not None
    out: dict[str, list[float]] = {"end_to_append": [], "end_to_detected": [],
                                   "detected_to_append": [], "inherent": []}
    detected: list[float] = []

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
        async with running(config, gpio, daemon_class=MarkedDaemon) as (daemon, _led):
            await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle")
            await asyncio.sleep(2.0)  # past the pipe source's start-up burst
            for i in range(count):
                utterance = wake_then("what time is it", *WAKE_VOICES[i % len(WAKE_VOICES)])
                pcm = silence(LEAD_MS) + utterance.pcm + silence(800)
                end_sample = len(silence(LEAD_MS)) + utterance.wake_end
                ends: list[float] = []
                mic.wait_played(5)
                since = time.monotonic()
                watcher = written_at(mic, len(pcm) - end_sample, ends)
                mic.play(pcm)
                await wait_until(lambda s=since: any(
                    t > s and isinstance(e, InputAudioAppend)
                    for t, e in server.connections[-1].received), 10, what="append")
                first = next(t for t, e in server.connections[-1].received
                             if t > since and isinstance(e, InputAudioAppend))
                watcher.join()
                out["end_to_append"].append(first - ends[0])
                out["end_to_detected"].append(detected[-1] - ends[0])
                out["detected_to_append"].append(first - detected[-1])
                out["inherent"].append(inherent_delay_s(utterance))
                await wait_until(lambda: daemon.machine.state is State.IDLE, 15,
                                 what="idle again")
                await asyncio.sleep(0.5)
    return out


def stats_ms(values: Sequence[float]) -> str:
    """Median and range, in ms."""
    ms = sorted(v * 1000 for v in values)
    return f"median {statistics.median(ms):6.1f} ms (min {ms[0]:.1f}, max {ms[-1]:.1f})"


def main() -> None:
    """Parse the arguments, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    with PulseAudio() as pulse:
        out = asyncio.run(trials(pulse, args.trials))
    added = [a - b for a, b in zip(out["end_to_detected"], out["inherent"], strict=True)]
    print(f"{args.trials} wake words ({len(WAKE_VOICES)} espeak-ng voices), PulseAudio pipe source")
    print(f"wake word end -> first append at the server: {stats_ms(out['end_to_append'])}")
    print(f"  end -> detected on the loop:              {stats_ms(out['end_to_detected'])}")
    print(f"  detected -> append at the server:         {stats_ms(out['detected_to_append'])}")
    print(f"baseline, the detector's own delay (offline): {stats_ms(out['inherent'])}")
    print(f"added by the capture path (end -> detected minus the detector's delay): "
          f"{stats_ms(added)}")


if __name__ == "__main__":
    main()
