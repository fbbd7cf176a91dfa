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
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.fixtures_server import pcm_silence, pcm_tone
from tests.pulse import MicWriter, PulseAudio

from pivox.config import load_config
from pivox.core.events import FunctionCallOutput, InputAudioAppend, SessionUpdate
from pivox.net.link import session_config
from pivox.protocol.openai import encode_client_event
from pivox.server import RealtimeServer, ServerOptions

BENCH = Path(__file__).resolve().parent
PIVOX = Path(sys.executable).parent / "pivox"
CYCLE_MS = 5000
TONE_MS = 400
REPLY_MS = 3600
TICKS = os.sysconf("SC_CLK_TCK")
CONFIG = """\
[server]
url = "{url}"
model = ""
reconnect_max_s = 2.0
[session]
mode = "always_on"
[button]
enabled = false
[led]
enabled = false
[log]
level = "warning"
journal = "off"
"""


class ServerThread:
    """The bundled server on its own loop in a thread; `url` and `server` once started."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.server: RealtimeServer | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the bundled server did not start")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with RealtimeServer(self.options) as server:
            self.server = server
            self._ready.set()
            await self._stop.wait()

    @property
    def url(self) -> str:
        """The server's ws:// URL."""
        assert self.server is not None
        return self.server.url

    def counts(self) -> tuple[int, int, bool]:
        """Appends received, audio deltas sent, and whether a tool output came: all connections."""
        assert self.server is not None
        appends = deltas = 0
        tool_output = False
        for record in list(self.server.connections):
            events = [event for _, event in tuple(record.received)]
            appends += sum(isinstance(e, InputAudioAppend) for e in events)
            tool_output |= any(isinstance(e, FunctionCallOutput) for e in events)
            deltas += sum(t.endswith("audio.delta") for t in tuple(record.sent))
        return appends, deltas, tool_output

    def close(self) -> None:
        """Stop the server and join the thread."""
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


class Feeder:
    """Keeps the paced mic writer playing tone + silence cycles while `on`."""

    def __init__(self, mic: MicWriter) -> None:
        self.mic = mic
        self.on = False
        self._cycle = pcm_tone(TONE_MS) + pcm_silence(CYCLE_MS - TONE_MS)
        threading.Thread(target=self._run, name="bench-feeder", daemon=True).start()

    def _run(self) -> None:
        while True:
            if self.on and self.mic.pending < len(self._cycle) // 4:
                self.mic.play(self._cycle)
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop adding cycles and wait until the queued ones were played."""
        self.on = False
        self.mic.wait_played(2 * CYCLE_MS / 1000)


@dataclass
class Sample:
    """One measured run: CPU % of one core, RSS MB, traffic per second of the window."""

    cpu: float
    rss: float
    appends: float
    reply: float


@dataclass
class Scenario:
    """A program under one kind of traffic, and its samples over the rounds."""

    name: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float:
        """Median of one field over the samples."""
        return statistics.median(getattr(s, attr) for s in self.samples)


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    """VmRSS of `pid` in MB (2**20 bytes)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def measure(cmd: list[str], env: dict[str, str], server: ServerThread, args: argparse.Namespace,
            *, before: Callable[[subprocess.Popen[bytes]], None] | None = None) -> Sample:
    """Start `cmd`, let it warm up, measure one window, stop it with SIGTERM."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            if before is not None:
                before(proc)
            time.sleep(args.warmup)
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{cmd[1]} exited {proc.returncode}: {log.read()[-2000:]!r}")
            appends0, deltas0, _ = server.counts()
            t0, c0 = time.monotonic(), cpu_seconds(proc.pid)
            time.sleep(args.window)
            t1, c1 = time.monotonic(), cpu_seconds(proc.pid)
            rss = rss_mb(proc.pid)
            appends1, deltas1, _ = server.counts()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    span = t1 - t0
    return Sample(cpu=100 * (c1 - c0) / span, rss=rss, appends=(appends1 - appends0) / span,
                  reply=100 * (deltas1 - deltas0) * 0.1 / span)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` every 50 ms; raise RuntimeError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def machine() -> str:
    """nproc, CPU model, kernel and PulseAudio version of this machine."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo
                  if line.startswith("model name")), "unknown CPU")
    pulse = subprocess.run(["pulseaudio", "--version"], capture_output=True, text=True)
    return (f"{os.cpu_count()} x {model}, Linux {platform.release()}, "
            f"{pulse.stdout.strip()}, Python {platform.python_version()}")


def run(args: argparse.Namespace) -> dict[str, Scenario]:
    """All rounds; returns the scenarios by name."""
    names = ("floor: PyAudio duplex only", "floor: + websocket, idle traffic",
             "floor: + websocket, duplex traffic", "pivox run: duplex", "pivox run: idle",
             "pivox run: muted")
    out = {name: Scenario(name) for name in names}
    with PulseAudio() as pulse, tempfile.TemporaryDirectory() as tmp:
        assert pulse.mic is not None
        feeder = Feeder(pulse.mic)
        replies = ServerThread(ServerOptions(port=0, speed=1.0, reply="ramp", reply_ms=REPLY_MS))
        mutes = ServerThread(ServerOptions(port=0, speed=1.0, reply="ramp", reply_ms=500,
                                           tool_call="mute"))
        config = Path(tmp, "pivox.toml")
        muted_config = Path(tmp, "muted.toml")
        config.write_text(CONFIG.format(url=replies.url))
        muted_config.write_text(CONFIG.format(url=mutes.url))
        session = encode_client_event(
            SessionUpdate(session=session_config(load_config(str(config), []))))
        floor = [sys.executable, str(BENCH / "floor_duplex.py")]
        floor_ws = [*floor, "--url", replies.url, "--session", session]
        pivox = [str(PIVOX), "run", "--config", str(config)]
        env = pulse.env

        def mute_first(proc: subprocess.Popen[bytes]) -> None:
            before = len(mutes.server.connections) if mutes.server else 0
            wait_for(lambda: mutes.server is not None and len(mutes.server.connections) > before,
                     10, "pivox to connect")
            time.sleep(1.0)
            pulse.mic.play(pcm_tone(TONE_MS))  # type: ignore[union-attr]
            wait_for(lambda: mutes.counts()[2], 10, "pivox to call its mute tool")

        try:
            for r in range(args.rounds):
                print(f"round {r + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
                feeder.on = True
                duplex = [("floor: + websocket, duplex traffic", floor_ws),
                          ("pivox run: duplex", pivox)]
                for name, cmd in duplex if r % 2 == 0 else duplex[::-1]:
                    out[name].samples.append(measure(cmd, env, replies, args))
                feeder.stop()
                for name, cmd in (("floor: + websocket, idle traffic", floor_ws),
                                  ("pivox run: idle", pivox),
                                  ("floor: PyAudio duplex only", floor)):
                    out[name].samples.append(measure(cmd, env, replies, args))
                out["pivox run: muted"].samples.append(measure(
                    [str(PIVOX), "run", "--config", str(muted_config)], env, mutes, args,
                    before=mute_first))
        finally:
            replies.close()
            mutes.close()
    return out


def report(results: dict[str, Scenario], args: argparse.Namespace) -> None:
    """Print the table and the ratios."""
    print(f"machine: {machine()}")
    print(f"{args.rounds} rounds, {args.warmup:.0f} s warm-up, {args.window:.0f} s window; "
          "CPU in % of one core, medians (each round in brackets)")
    print(f"{'program, traffic':<36} {'CPU %':>6} {'RSS MB':>7} {'appends/s':>9} "
          f"{'reply %':>7}  rounds")
    for s in results.values():
        rounds = ", ".join(f"{x.cpu:.2f}" for x in s.samples)
        print(f"{s.name:<36} {s.median('cpu'):6.2f} {s.median('rss'):7.1f} "
              f"{s.median('appends'):9.1f} {s.median('reply'):7.1f}  [{rounds}]")
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    args = parser.parse_args()
    report(run(args), args)


if __name__ == "__main__":
    main()
