"""Benchmark: CPU and RSS of a whole `pivox run` process beside bare floors, in one run.

Run: .venv/bin/python bench/daemon_cpu.py [--rounds N] [--window S] [--warmup S]

Everything runs on a private PulseAudio (tests/pulse.py: null sink speaker, paced pipe-source
mic). The bundled realtime server runs in a thread of this process (ramp replies at speed
1.0); the measured programs are separate processes: `pivox run` (always-on, no GPIO) and
bench/floor_duplex.py. CPU is utime+stime from /proc/<pid>/stat over `--window` seconds after
`--warmup`, as % of one core; RSS is VmRSS at the end of the window. Traffic, the same for
every program of a kind:

- duplex: the mic repeats a 400 ms tone every 5 s; server VAD ends the turn 500 ms after it
  and replies 3.6 s of ramp audio in real time (100 ms deltas), so mic frames flow up all the
  time and reply audio flows down ~72 % of the time, with no barge-in;
- idle: the mic is silent (frames flow up, nothing comes down);
- muted: pivox only: the first reply calls its `mute` tool, then nothing is sent or played.

Prints the median of `--rounds` rounds (and each round), and ratios against the floors:
pivox duplex vs the websocket floor with duplex traffic, idle vs the floor with idle traffic,
muted vs the bare PyAudio duplex. Not a test: nothing passes or fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.fixtures_server import pcm_tone
from tests.pulse import PulseAudio

import harness
from pivox.config import load_config
from pivox.core.events import SessionUpdate
from pivox.net.link import session_config
from pivox.protocol.openai import encode_client_event
from pivox.server import ServerOptions

TONE_MS = 400
REPLY_MS = 3600


def run(args: argparse.Namespace) -> dict[str, harness.Scenario]:
    """All rounds; returns the scenarios by name."""
    names = ("floor: PyAudio duplex only", "floor: + websocket, idle traffic",
             "floor: + websocket, duplex traffic", "pivox run: duplex", "pivox run: idle",
             "pivox run: muted")
    out = {name: harness.Scenario(name) for name in names}
    with PulseAudio() as pulse, tempfile.TemporaryDirectory() as tmp:
        assert pulse.mic is not None
        feeder = harness.Feeder(pulse.mic)
        replies = harness.ServerThread(
            ServerOptions(port=0, speed=1.0, reply="ramp", reply_ms=REPLY_MS))
        mutes = harness.ServerThread(
            ServerOptions(port=0, speed=1.0, reply="ramp", reply_ms=500, tool_call="mute"))
        config = Path(tmp, "pivox.toml")
        muted_config = Path(tmp, "muted.toml")
        config.write_text(harness.pivox_config(replies.url))
        muted_config.write_text(harness.pivox_config(mutes.url))
        session = encode_client_event(
            SessionUpdate(session=session_config(load_config(str(config), []))))
        floor = [sys.executable, str(harness.BENCH / "floor_duplex.py")]
        floor_ws = [*floor, "--url", replies.url, "--session", session]
        pivox = harness.pivox_command(config)
        env = pulse.env

        def mute_first(proc: subprocess.Popen[bytes]) -> None:
            before = len(mutes.server.connections) if mutes.server else 0
            harness.wait_for(
                lambda: mutes.server is not None and len(mutes.server.connections) > before,
                10, "pivox to connect")
            time.sleep(1.0)
            pulse.mic.play(pcm_tone(TONE_MS))  # type: ignore[union-attr]
            harness.wait_for(lambda: mutes.counts()[2], 10, "pivox to call its mute tool")

        try:
            for r in range(args.rounds):
                print(f"round {r + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
                feeder.on = True
                harness.measure_round(r, [("floor: + websocket, duplex traffic", floor_ws),
                                  ("pivox run: duplex", pivox)], out, env, replies, args)
                feeder.stop()
                for name, cmd in (("floor: + websocket, idle traffic", floor_ws),
                                  ("pivox run: idle", pivox),
                                  ("floor: PyAudio duplex only", floor)):
                    out[name].samples.append(harness.measure(cmd, env, replies, args))
                out["pivox run: muted"].samples.append(harness.measure(
                    harness.pivox_command(muted_config), env, mutes, args, before=mute_first))
        finally:
            replies.close()
            mutes.close()
    return out


def report(results: dict[str, harness.Scenario], args: argparse.Namespace) -> None:
    """Print the table and the ratios."""
    harness.print_scenarios(results, args, ("cpu", "rss", "appends", "reply"), "program, traffic")
    pairs = (("pivox run: duplex", "floor: + websocket, duplex traffic", "target <= 1.25x, +8 MB"),
             ("pivox run: idle", "floor: + websocket, idle traffic", ""),
             ("pivox run: muted", "floor: PyAudio duplex only", ""))
    for name, base, note in pairs:
        a, b = results[name], results[base]
        print(f"{name} vs {base}: CPU {a.median('cpu') / b.median('cpu'):.2f}x, "
              f"RSS {a.median('rss') - b.median('rss'):+.1f} MB  {note}".rstrip())
        print(f"  = {a.median('cpu') * 0.6:.2f} vs {b.median('cpu') * 0.6:.2f} CPU s per minute")


def main() -> None:
    """Parse the arguments, run, print."""
    args = harness.arguments(__doc__, **harness.WINDOW)
    report(run(args), args)


if __name__ == "__main__":
    main()
