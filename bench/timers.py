"""Benchmark: timers on the device — due time to chime heard, and the idle cost of 32 timers.

Run: .venv/bin/python bench/timers.py [--timers N] [--rounds N] [--window S] [--warmup S]

Everything runs on a private PulseAudio (tests/pulse.py). Two parts:

- latency: the daemon (push-to-talk, idle, in this process, the bundled server in a thread of
  it) on the real PyAudio speaker, which logs per callback what it handed (bench/
  daemon_latency.py's TimedSpeaker); `--timers` timers of 1 s are set one after another and
  stopped 0.4 s into their ring. Per timer: due -> chime heard at the sink monitor, and
  beside it the speaker path's own latency, chime handed to PortAudio -> heard, on the same
  chimes; median and p99 of each.
- CPU: `pivox run` (push-to-talk, idle, no GPIO) as a separate process, started on a state
  file holding 32 timers (due in 10 h) or none, in alternating order, `--rounds` times
  (bench/harness.py: utime+stime over `--window` s after `--warmup` s, % of one core); the
  cost of the timers is the median of the per-round paired differences. Beside it, the scheduler's
  own work measured directly: one wake-up of its loop (tick + next due) with 32 timers, times
  its wake-ups per second.

Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.pulse import PulseAudio, Recording

import harness
from daemon_latency import TimedSpeaker, bench_config, onsets, running, wait_until
from pivox.cli.hardware import open_pyaudio_microphone
from pivox.config import TimerSettings
from pivox.core.machine import State
from pivox.core.schedule import Now, Schedule
from pivox.daemon import Daemon, Hardware
from pivox.host.clock import boot_id
from pivox.host.statefile import STATE_FILE
from pivox.server import RealtimeServer, ServerOptions
from pivox.skills.timers import JUMP_CHECK_S, Timers, local_zone

RATE = 24000
GAP = RATE // 10
"""100 ms of zeros separate chimes (and a chime's rest) in the monitor recording."""
SCENARIOS = {"no timers": 0, "32 timers due in 10 h": 32}


def recorded_onsets(recording: Recording, pcm: bytes) -> list[float]:
    """When each run of sound after >= 100 ms of zeros reached the monitor (monotonic)."""
    out, quiet = [], GAP
    for i in range(0, len(pcm), 2):
        if pcm[i:i + 2] != b"\0\0":
            if quiet >= GAP:
                out.append(recording.captured_at(i))
            quiet = 0
        else:
            quiet += 1
    return out


def first_after(times: Sequence[float], after: float) -> float:
    return min(t for t in times if t >= after)


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def line(name: str, values: Sequence[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"  {name:36} median {statistics.median(ms):6.1f} ms  p99 {p99(ms):6.1f} ms  "
            f"(min {min(ms):.1f}, max {max(ms):.1f}, n={len(ms)})")


async def latency(timers: int) -> tuple[list[float], list[float], list[float]]:
    """Per timer: due -> heard, handed -> heard, due -> the chime queued on the loop."""
    speakers: list[TimedSpeaker] = []

    def open_speaker(config: object, ring: object, far: object) -> TimedSpeaker:
        speakers.append(TimedSpeaker(ring, latency_ms=40, far_end=far))
        return speakers[-1]

    hardware = Hardware(open_microphone=open_pyaudio_microphone, open_speaker=open_speaker,
                        open_button=None, open_led=None)
    dues: list[float] = []
    with tempfile.TemporaryDirectory() as state, PulseAudio() as pulse:
        async with RealtimeServer(ServerOptions(port=0, speed=0.0, reply="ramp")) as server:
            config = dataclasses.replace(bench_config(server.url, "push_to_talk"),
                                         timers=TimerSettings(state_dir=state))
            daemon = Daemon(config, hardware)
            queued: list[float] = []
            start_chime = daemon.alarms.ringer.start

            def timed_start() -> None:
                queued.append(time.monotonic())
                start_chime()

            daemon.alarms.ringer.start = timed_start  # type: ignore[method-assign]
            async with running(daemon):
                await wait_until(lambda: daemon.machine.state is State.IDLE)
                await asyncio.sleep(1.5)  # streams past their start-up burst
                with pulse.recording() as recording:
                    for _ in range(timers):
                        daemon.timers.call("set_timer", {"seconds": 1})
                        [entry] = daemon.timers.schedule.entries
                        assert entry.due_mono is not None
                        dues.append(entry.due_mono)
                        await wait_until(lambda: daemon.machine.state is State.RINGING, 5)
                        await asyncio.sleep(0.4)
                        daemon.timers.call("stop_ringing", {})
                        await asyncio.sleep(0.3 + random.random() * 0.2)
                    pcm = recording.stop()
    heard = recorded_onsets(recording, pcm)
    handed = [h.at for speaker in speakers for h in onsets(speaker.handed)]
    due_to_heard, handed_to_heard, due_to_queued = [], [], []
    for due in dues:
        at = first_after(heard, due - 0.005)
        due_to_heard.append(at - due)
        handed_to_heard.append(at - first_after(handed, due - 0.005))
        due_to_queued.append(first_after(queued, due - 0.005) - due)
    return due_to_heard, handed_to_heard, due_to_queued


def state_file(directory: Path, timers: int) -> None:
    """A state file of `timers` timers due in 10 h, written as the daemon would."""
    schedule = Schedule(local_zone())
    now = Now(mono=time.monotonic(), wall=time.time())
    for i in range(timers):
        schedule.set_timer(36000 + i, f"timer {i}", now)
    directory.mkdir()
    (directory / STATE_FILE).write_bytes(schedule.dump(now, boot_id()))


def cpu(args: argparse.Namespace) -> dict[str, harness.Scenario]:
    """`pivox run` idle on a state file of 32 timers or none, alternately, per round."""
    out = {name: harness.Scenario(name) for name in SCENARIOS}
    with PulseAudio() as pulse, tempfile.TemporaryDirectory() as tmp:
        server = harness.ServerThread(ServerOptions(port=0, speed=0.0, reply="ramp"))
        try:
            order = []
            for name, timers in SCENARIOS.items():
                state = Path(tmp) / str(timers)
                state_file(state, timers)
                config = state / "pivox.toml"
                config.write_text(harness.pivox_config(server.url, mode="push_to_talk")
                                  + f'[timers]\nstate_dir = "{state}"\n')
                order.append((name, harness.pivox_command(config)))
            for r in range(args.rounds):
                harness.measure_round(r, order, out, pulse.env, server, args)
        finally:
            server.close()
    return out


def scheduler_work(timers: int, wakeups: int = 2000) -> float:
    """Seconds one wake-up of the timers loop takes (tick + next due) with `timers` timers."""
    config = bench_config("ws://127.0.0.1:1/", "push_to_talk")
    loop = Timers(config.timers, boot="bench")
    for i in range(timers):
        loop.call("set_timer", {"seconds": 36000 + i})
    start = time.perf_counter()
    for _ in range(wakeups):
        loop.tick()
        loop.schedule.next_check(loop.now())
    return (time.perf_counter() - start) / wakeups


def main() -> None:
    window = {**harness.WINDOW, "rounds": 6, "window": (20.0, "seconds measured")}
    args = harness.arguments(__doc__, timers=(50, "timers of the latency part"), **window)
    due_to_heard, handed_to_heard, due_to_queued = asyncio.run(latency(args.timers))
    print("due -> chime heard at the sink monitor (issue: within 150 ms)")
    print(line("pivox: due -> heard", due_to_heard))
    print(line("baseline: chime handed -> heard", handed_to_heard))
    print(line("so due -> handed to PortAudio", [
        a - b for a, b in zip(due_to_heard, handed_to_heard, strict=True)]))
    print(line("of which due -> chime queued (loop)", due_to_queued))
    results = cpu(args)
    none, full = ([x.cpu for x in results[name].samples] for name in SCENARIOS)
    harness.print_scenarios(results, args, ("cpu", "rss"), "pivox run, push-to-talk, idle")
    diffs = [f - n for f, n in zip(full, none, strict=True)]
    print(f"32 timers - none, paired per round (target <= +0.1 % of a core): median "
          f"{statistics.median(diffs):+.3f} % ({', '.join(f'{d:+.3f}' for d in diffs)})")
    work = scheduler_work(32)
    print(f"  the scheduler's own work: {work * 1e6:.1f} us a wake-up with 32 timers, "
          f"{1 / JUMP_CHECK_S:.0f} wake-up/s while none is due = "
          f"{100 * work / JUMP_CHECK_S:.4f} % of a core")


if __name__ == "__main__":
    main()
