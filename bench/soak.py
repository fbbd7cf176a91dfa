"""Soak: the daemon against the bundled server for N push-to-talk turns with random faults.

Time is compressed: the server sends replies as fast as it can (speed 0), the file-backed
mic and speaker run `--speed` times faster than real time, the button is pressed by this
script, and reconnects wait at most `server.reconnect_max_s=1`. Every few turns the next
connection gets a random piece of bad input and a random way to die (faults.py), so the
daemon keeps reconnecting. The server runs in this process too; its records of old links
are dropped as the soak goes, so the RSS figures are the daemon's.

Prints turns completed and failed, reconnects, and RSS, open fds and threads at boot, after
the warm-up and at the end. Run: `.venv/bin/python bench/soak.py --turns 1000`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import math
import os
import random
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path

from harness import arguments
from pivox.audio.filedevices import FileMicrophone, FileSpeaker, write_wav
from pivox.config import Config, load_config
from pivox.core.farend import FarEnd
from pivox.core.machine import State
from pivox.core.ring import AudioRing
from pivox.daemon import Daemon, Hardware
from pivox.server import RealtimeServer, ServerOptions
from pivox.server.faults import parse_fault

BAD_INPUT = (
    "malformed", "bad_base64", "unknown", "oversized:2000000", "error:server_error",
    "error:rate_limit", "error:invalid_request_error",
)
ENDINGS = ("close:1000", "close:1011", "drop", "freeze:30")
ENDING_WEIGHTS = (4, 4, 4, 1)
TURN_TIMEOUT_S = 15.0


def usage() -> dict[str, int]:
    """This process's RSS (KiB), open file descriptors and threads, from /proc."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {
        "rss_kib": int(status["VmRSS"].split()[0]),
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": int(status["Threads"]),
        "py_threads": threading.active_count(),
    }


def tone_wav(path: Path) -> Path:
    """One second of a 440 Hz tone as the mic's file (silence follows it)."""
    pcm = array("h", (round(6000 * math.sin(2 * math.pi * 440 * i / 24000))
                      for i in range(24000)))
    write_wav(path, pcm.tobytes())
    return path


def soak_config(url: str) -> Config:
    """Push-to-talk with no debounce or minimum hold, fast reconnects and keep-alive."""
    return load_config(None, [
        f"server.url={url}", "server.model=", "session.mode=push_to_talk",
        "server.reconnect_max_s=1", "server.ping_interval_s=1", "server.ping_timeout_s=1",
        "button.enabled=false", "led.enabled=false", "button.min_hold_ms=0",
        "button.debounce_ms=0", "log.level=warning",
    ])


def file_hardware(wav: Path, speed: float) -> Hardware:
    """A paced file mic and a speaker that plays into nothing, both `speed` times real time."""

    def open_mic(config: Config, on_frame: Callable[[bytes], None]) -> FileMicrophone:
        return FileMicrophone(wav, on_frame=on_frame, speed=speed)

    def open_speaker(config: Config, ring: AudioRing, far_end: FarEnd) -> FileSpeaker:
        return FileSpeaker(ring, os.devnull, speed=speed, keep=False, far_end=far_end)

    return Hardware(open_microphone=open_mic, open_speaker=open_speaker,
                    open_button=None, open_led=None)


def next_faults(rng: random.Random) -> list[str]:
    """Faults for one connection: one bad input early, then an ending a few turns later."""
    bad = rng.choice(BAD_INPUT)
    ending = rng.choices(ENDINGS, ENDING_WEIGHTS)[0]
    return [f"{bad}:after={rng.randint(3, 40)}", f"{ending}:after={rng.randint(40, 120)}"]


async def turn(daemon: Daemon, hold_s: float) -> bool:
    """Press, hold, release; True once the reply has played out and the daemon is idle."""
    done = daemon.stats["turns"]
    daemon._on_button_edge(True, daemon.clock())
    await asyncio.sleep(hold_s)
    daemon._on_button_edge(False, daemon.clock())
    deadline = time.monotonic() + TURN_TIMEOUT_S
    while time.monotonic() < deadline:
        if daemon.stats["turns"] > done and daemon.machine.state is State.IDLE:
            return True
        if daemon.machine.state is State.OFFLINE:
            return False  # the link died under this turn
        await asyncio.sleep(0.005)
    return False


async def wait_idle(daemon: Daemon) -> None:
    while daemon.machine.state is not State.IDLE:
        await asyncio.sleep(0.01)


async def soak(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)
    boot = usage()
    with tempfile.TemporaryDirectory(prefix="pivox-soak-") as tmp:
        wav = tone_wav(Path(tmp) / "mic.wav")
        options = ServerOptions(port=0, speed=0.0, reply="ramp", reply_ms=args.reply_ms,
                                record_bytes=64 * 1024)
        async with RealtimeServer(options) as server:
            daemon = Daemon(soak_config(server.url), file_hardware(wav, args.speed))
            runner = asyncio.create_task(daemon.run())
            for spec in next_faults(rng):
                server.inject(parse_fault(spec))
            links = 0
            completed = failed = 0
            start: dict[str, int] | None = None
            started = time.monotonic()
            for n in range(args.turns):
                async with asyncio.timeout(60):
                    await wait_idle(daemon)
                if daemon.link.stats["connects"] != links:  # a new link took the faults: queue more
                    links = daemon.link.stats["connects"]
                    # The in-process server keeps a record of every link; drop the old ones so
                    # RSS measures the daemon, not the test peer's bookkeeping.
                    del server.connections[:-1]
                    for spec in next_faults(rng):
                        server.inject(parse_fault(spec))
                if await turn(daemon, args.hold_s):
                    completed += 1
                else:
                    failed += 1
                if n + 1 == args.warmup:
                    gc.collect()
                    start = usage()
                if (n + 1) % 100 == 0:
                    print(f"  {n + 1} turns, {daemon.link.stats['connects'] - 1} reconnects, "
                          f"{usage()}, {time.monotonic() - started:.0f} s", flush=True)
            gc.collect()
            end = usage()
            daemon.stop()
            await runner
    assert start is not None
    return {
        "turns": args.turns, "completed": completed, "failed": failed,
        "reconnects": daemon.link.stats["connects"] - 1, "bad_events": daemon.stats["bad_events"],
        "wall_s": round(time.monotonic() - started, 1),
        "boot": boot, "start": start, "end": end,
        "rss_growth_kib": end["rss_kib"] - start["rss_kib"],
        "fd_growth": end["fds"] - start["fds"],
        "thread_growth": end["threads"] - start["threads"],
    }


def main() -> int:
    args = arguments(__doc__, turns=1000,
                     warmup=(50, "turns before the start figures are taken"),
                     speed=(4.0, "mic/speaker time compression"), reply_ms=400, hold_s=0.05,
                     seed=1)
    if args.warmup >= args.turns:
        raise SystemExit("soak.py: --warmup must be below --turns")
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        result = asyncio.run(soak(args))
        for key, value in result.items():
            print(f"{key}: {value}")
        ok = result["rss_growth_kib"] < 2048 and result["fd_growth"] <= 0 and (  # type: ignore[operator]
            result["thread_growth"] <= 0)
        print("PASS" if ok else "FAIL", "(target: RSS growth < 2 MB, no fd or thread growth)")
        return 0 if ok else 1
    return 130


if __name__ == "__main__":
    raise SystemExit(main())
