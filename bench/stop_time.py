"""Benchmark: how long `pivox run` takes to exit after SIGTERM, right after a barge-in.

Run: .venv/bin/python bench/stop_time.py [--cycles 40] [--seed 1]

Each cycle starts a real `pivox run` (always-on, PyAudio on a private PulseAudio, the
bundled server in this process with 4 s ramp replies at real-time speed), speaks, waits for
the reply to play, speaks again (barge-in: the speaker is aborted and reopened) and sends
SIGTERM 0-300 ms after the barge-in was logged (random, seeded), when stop may meet the
flush, the reopened stream or the close. It prints the time from SIGTERM to the process's
exit: min / median / p95 / max over the cycles, and how many needed SIGKILL (none may: the
daemon ends itself within 2 s whatever a PortAudio call does). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.fixtures_server import pcm_tone
from tests.pulse import PulseAudio

from harness import arguments, pivox_config, start_pivox
from pivox.server import RealtimeServer, ServerOptions

KILL_AFTER_S = 10.0


async def until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def cycle(pulse: PulseAudio, url: str, config: Path, rng: random.Random) -> float | None:
    """One start -> reply -> barge-in -> SIGTERM; seconds from SIGTERM to exit (None: killed)."""
    assert pulse.mic is not None
    process, out = start_pivox(config)
    try:
        if not await until(lambda: out.count("-> listening"), 20):
            raise RuntimeError("never listening: " + " | ".join(out.lines[-5:]))
        await asyncio.sleep(0.5)
        pulse.mic.play(pcm_tone(600))
        if not await until(lambda: out.count("-> speaking"), 20):
            raise RuntimeError("never speaking: " + " | ".join(out.lines[-5:]))
        await asyncio.sleep(rng.uniform(0.3, 1.0))
        pulse.mic.play(pcm_tone(600))
        if not await until(lambda: out.count("barge-in:"), 20):
            raise RuntimeError("no barge-in: " + " | ".join(out.lines[-5:]))
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        if await until(lambda: process.poll() is not None, KILL_AFTER_S):
            return time.monotonic() - sent
        return None
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        pulse.mic.wait_played(2.0)


async def main_async(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    options = ServerOptions(port=0, reply="ramp", reply_ms=4000, speed=1.0)
    times: list[float] = []
    killed = 0
    with PulseAudio() as pulse, tempfile.TemporaryDirectory() as tmp:
        async with RealtimeServer(options) as server:
            config = Path(tmp) / "pivox.toml"
            config.write_text(pivox_config(server.url, level="info",
                                           session="vad_silence_duration_ms = 300"))
            for n in range(args.cycles):
                took = await cycle(pulse, server.url, config, rng)
                if took is None:
                    killed += 1
                else:
                    times.append(took)
                print(f"cycle {n + 1}: {'KILLED' if took is None else f'{took * 1000:.0f} ms'}",
                      flush=True)
    times.sort()
    ms = [t * 1000 for t in times]
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))] if ms else float("nan")
    print(f"\nSIGTERM -> exit over {len(ms)} cycles: min {ms[0]:.0f} ms, "
          f"median {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms; "
          f"killed after {KILL_AFTER_S:.0f} s: {killed}")


def main() -> None:
    asyncio.run(main_async(arguments(__doc__, cycles=40, seed=1)))


if __name__ == "__main__":
    main()
