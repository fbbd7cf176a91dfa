"""Benchmark: what an idle pivox costs, beside the bare duplex floor and the bare libraries.

Run: .venv/bin/python bench/idle_cost.py [--rounds N] [--window S] [--warmup S]
         [--before DAEMON_DIR]

One private PulseAudio (tests/pulse.py: null sink speaker, paced pipe-source mic playing low
noise, about -60 dBFS, round and round: nobody speaks, nothing plays), the bundled server in
a thread (bench/daemon_cpu.py's ServerThread; its VAD never fires on the noise, so nothing is
ever replied). Every program is its own process and hears the same frames; CPU is utime +
stime over `--window` s after `--warmup` s, % of one core; RSS at the end of the window:

- floor: bench/floor_duplex.py, PyAudio duplex only (output plays silence, mic dropped);
- floor + websocket: the same streaming every mic frame to the server (always_on's floor);
- floor + bare wake word / + bare AEC + wake word: the libraries pivox wraps called in the
  floor's mic callback on every frame (`--wake okay_nabu`, `--aec --wake okay_nabu`);
- pivox run in push_to_talk, wake_word and always_on (the shipped config otherwise: echo
  cancellation on), from this tree and, with `--before`, from another checkout's daemon/
  directory (e.g. `git worktree add --detach /tmp/before <commit>`: `/tmp/before/daemon`),
  both run by this venv's `pivox` with PYTHONPATH pointing at a copy of their tree compiled to
  bytecode, as pip installs it (an environment with PYTHONDONTWRITEBYTECODE set would compile
  every module at each start, and the RSS would show it).

Rounds interleave every program (order reversed every other round); each cost is the median
over rounds of (program - its floor) measured in the same round, so the machine's load drift
between rounds cancels. Prints the table, the load average seen, the costs over the floors
and after/before ratios. Not a test: nothing passes or fails.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.pulse import MicWriter, PulseAudio

import harness
from pivox.config import load_config
from pivox.core.events import SessionUpdate
from pivox.net.link import session_config
from pivox.protocol.openai import encode_client_event
from pivox.server import ServerOptions

TREE = Path(__file__).resolve().parents[1] / "daemon"
MODES = ("push_to_talk", "wake_word", "always_on")
FLOOR = "floor: PyAudio duplex"
FLOOR_WS = "floor + websocket (streaming)"
LIBRARY = "floor + bare wake word"
LIBRARIES = "floor + bare AEC3 + wake word"
NOISE_RMS = 30.0
Results = dict[str, harness.Scenario]


class Noise:
    """Keeps the paced mic playing low noise (nobody speaks) while the bench runs."""

    def __init__(self, mic: MicWriter) -> None:
        self.mic = mic
        rng = np.random.default_rng(24)
        self.pcm = (rng.standard_normal(24000 * 10) * NOISE_RMS).astype("<i2").tobytes()
        threading.Thread(target=self._run, name="bench-noise", daemon=True).start()

    def _run(self) -> None:
        while True:
            if self.mic.pending < len(self.pcm) // 4:
                self.mic.play(self.pcm)
            time.sleep(0.1)


def pivox_name(mode: str, tree: str) -> str:
    """The row of `pivox run` in `mode` from `tree` (before or after)."""
    return f"pivox {mode} ({tree})"


def installed(tree: str, copy: Path) -> str:
    """`tree` copied to `copy` and compiled to bytecode, as pip installs pivox."""
    shutil.copytree(tree, copy, ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(copy, quiet=1)
    return str(copy)


def run(args: argparse.Namespace) -> tuple[dict[str, harness.Scenario], list[float]]:
    """All rounds; the scenarios by name and the 1-minute load averages seen."""
    trees = {"after": str(TREE)}
    if args.before:
        trees["before"] = str(Path(args.before).resolve())
    names = [FLOOR, FLOOR_WS, LIBRARY, LIBRARIES] + [
        pivox_name(mode, tree) for tree in trees for mode in MODES]
    out = {name: harness.Scenario(name) for name in names}
    loads: list[float] = []
    with PulseAudio() as pulse, tempfile.TemporaryDirectory() as tmp:
        assert pulse.mic is not None
        Noise(pulse.mic)
        server = harness.ServerThread(ServerOptions(port=0, speed=1.0, reply="ramp", reply_ms=500))
        floor = [sys.executable, str(harness.BENCH / "floor_duplex.py")]
        commands: dict[str, tuple[list[str], dict[str, str]]] = {}
        env = pulse.env
        trees = {tree: installed(daemon, Path(tmp, tree)) for tree, daemon in trees.items()}
        for mode in MODES:
            path = Path(tmp, f"{mode}.toml")
            path.write_text(harness.pivox_config(server.url, mode=mode))
            for tree, daemon in trees.items():
                commands[pivox_name(mode, tree)] = (
                    harness.pivox_command(path), {**env, "PYTHONPATH": daemon})
        session = encode_client_event(SessionUpdate(session=session_config(
            load_config(str(Path(tmp, "always_on.toml")), []))))
        commands[FLOOR] = (floor, env)
        commands[FLOOR_WS] = ([*floor, "--url", server.url, "--session", session], env)
        commands[LIBRARY] = ([*floor, "--wake", "okay_nabu"], env)
        commands[LIBRARIES] = ([*floor, "--aec", "--wake", "okay_nabu"], env)
        try:
            for r in range(args.rounds):
                print(f"round {r + 1}/{args.rounds} (load {os.getloadavg()[0]:.1f}) ...",
                      file=sys.stderr, flush=True)
                order = list(commands.items())
                for name, (cmd, cmd_env) in order if r % 2 == 0 else order[::-1]:
                    loads.append(os.getloadavg()[0])
                    out[name].samples.append(harness.measure(cmd, cmd_env, server, args))
        finally:
            server.close()
    return out, loads


def cost(results: Results, with_: str, without: str, attr: str = "cpu") -> float:
    """Median over rounds of (with - without) measured in the same round."""
    pairs = zip(results[with_].samples, results[without].samples, strict=True)
    return statistics.median(getattr(a, attr) - getattr(b, attr) for a, b in pairs)


def report(results: Results, loads: list[float], args: argparse.Namespace) -> None:
    """Print the table, the costs over the floors, and after/before."""
    print(f"machine: {harness.machine()}")
    print(f"{args.rounds} rounds, {args.warmup:.0f} s warm-up, {args.window:.0f} s window; "
          f"1-min load average while measuring: median {statistics.median(loads):.1f} "
          f"(min {min(loads):.1f}, max {max(loads):.1f}); CPU in % of one core")
    print(f"{'program':<34} {'CPU %':>6} {'RSS MB':>7} {'appends/s':>9}  rounds")
    for s in results.values():
        rounds = ", ".join(f"{x.cpu:.2f}" for x in s.samples)
        print(f"{s.name:<34} {s.median('cpu'):6.2f} {s.median('rss'):7.1f} "
              f"{s.median('appends'):9.1f}  [{rounds}]")
    print("costs: median over rounds of the paired difference (same round), % of one core")
    print(f"  bare wake word over the floor: {cost(results, LIBRARY, FLOOR):+.2f}; bare AEC3 + "
          f"wake word: {cost(results, LIBRARIES, FLOOR):+.2f}; websocket streaming: "
          f"{cost(results, FLOOR_WS, FLOOR):+.2f}")
    trees = [t for t in ("before", "after") if pivox_name(MODES[0], t) in results]
    for mode in MODES:
        floor = FLOOR_WS if mode == "always_on" else FLOOR
        line = []
        for tree in trees:
            name = pivox_name(mode, tree)
            line.append(f"{tree} {cost(results, name, floor):+.2f} "
                        f"(RSS {results[name].median('rss'):.1f} MB)")
        if len(trees) == 2:
            a, b = (cost(results, pivox_name(mode, t), floor) for t in ("after", "before"))
            line.append(f"after/before {a / b:.2f}x" if b > 0 else "")
            paired = cost(results, pivox_name(mode, "after"), pivox_name(mode, "before"))
            line.append(f"after - before, paired: {paired:+.2f}")
        print(f"  pivox {mode} over {floor}: " + "; ".join(x for x in line if x))


def main() -> None:
    """Parse the arguments, run, print."""
    args = harness.arguments(__doc__, **{**harness.WINDOW, "rounds": 5, "before": (
        None, "daemon/ directory of the checkout to compare with")})
    report(*run(args), args)


if __name__ == "__main__":
    main()
