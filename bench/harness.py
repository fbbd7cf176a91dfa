"""What the bench scripts share: their arguments, `pivox run` and the bundled server started for
them, processes measured (CPU, RSS), and the machine line and figures they print.

Not a bench itself. It imports nothing from tests/ at the top (the micro-benches need no test
extras); `Feeder` does, for the scripts that set up the `tests` package's path.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pivox.core.events import FunctionCallOutput, InputAudioAppend
from pivox.server import RealtimeServer, ServerOptions

if TYPE_CHECKING:
    from tests.pulse import MicWriter

BENCH = Path(__file__).resolve().parent
PIVOX = Path(sys.executable).parent / "pivox"
TICKS = os.sysconf("SC_CLK_TCK")
WINDOW = {
    "rounds": 3,
    "window": (15.0, "seconds measured"),
    "warmup": (5.0, "seconds before measuring"),
}
"""The arguments of the benches that measure processes over rounds of windows."""

Option = object | tuple[object, str]


def arguments(doc: str, argv: Sequence[str] | None = None, **options: Option) -> argparse.Namespace:
    """Parse the command line: `doc`'s first line describes the bench; each option is a
    `--name` with its default (or a (default, help) pair); the default's type is the flag's
    (False: a switch, None: a string)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, option in options.items():
        default, help_ = option if isinstance(option, tuple) else (option, None)
        flag = "--" + name.replace("_", "-")
        if default is False:
            parser.add_argument(flag, action="store_true", help=help_)
        else:
            kind = str if default is None else type(default)
            parser.add_argument(flag, type=kind, default=default, help=help_)
    return parser.parse_args(argv)


def pivox_config(url: str, *, mode: str = "always_on", level: str = "warning",
                 server: str = "", session: str = "", audio: str = "") -> str:
    """A `pivox run` config for the bundled server at `url`: no button, no LED, no journal;
    `server`, `session` and `audio` are more lines for those tables."""
    return (f'[server]\nurl = "{url}"\nmodel = ""\nreconnect_max_s = 2.0\n{server}\n'
            f'[session]\nmode = "{mode}"\n{session}\n'
            "[button]\nenabled = false\n[led]\nenabled = false\n"
            f'[log]\nlevel = "{level}"\njournal = "off"\n'
            + (f"[audio]\n{audio}\n" if audio else ""))


def pivox_command(config: Path) -> list[str]:
    """`pivox run` on `config`, as the installed console script."""
    return [str(PIVOX), "run", "--config", str(config)]


class StderrLines:
    """The stderr lines of a subprocess, collected by a thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def count(self, text: str) -> int:
        """How many lines so far hold `text`."""
        return sum(text in line for line in self.lines)


def start_pivox(config: Path) -> tuple[subprocess.Popen[str], StderrLines]:
    """`python -m pivox run` on `config` with no API key, its stderr collected."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pivox", "run", "--config", str(config)],
        env={**os.environ, "OPENAI_API_KEY": ""}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    return process, StderrLines(process.stderr)


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
    """Keeps the paced mic writer playing a `tone_ms` tone every `cycle_ms` while `on`."""

    def __init__(self, mic: MicWriter, tone_ms: int = 400, cycle_ms: int = 5000) -> None:
        from tests.fixtures_server import pcm_silence, pcm_tone  # only the CPU benches

        self.mic = mic
        self.on = False
        self.cycle_ms = cycle_ms
        self._cycle = pcm_tone(tone_ms) + pcm_silence(cycle_ms - tone_ms)
        threading.Thread(target=self._run, name="bench-feeder", daemon=True).start()

    def _run(self) -> None:
        while True:
            if self.on and self.mic.pending < len(self._cycle) // 4:
                self.mic.play(self._cycle)
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop adding cycles and wait until the queued ones were played."""
        self.on = False
        self.mic.wait_played(2 * self.cycle_ms / 1000)


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
        return float(statistics.median(getattr(s, attr) for s in self.samples))


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid` and of the children it has reaped, in seconds
    (a process it starts now and then is its cost too)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICKS


def memory_mb(pid: int, key: str = "VmRSS") -> float:
    """A memory figure of `pid` from /proc/<pid>/status (VmRSS, VmHWM...) in MB (2**20 B)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} for {pid}")


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
            rss = memory_mb(proc.pid)
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


def measure_round(r: int, order: Sequence[tuple[str, list[str]]], out: dict[str, Scenario],
                  env: dict[str, str], server: ServerThread, args: argparse.Namespace) -> None:
    """Round `r`: measure each command once into its scenario, in reverse order on odd rounds
    (so no program always runs first after a pause)."""
    for name, cmd in order if r % 2 == 0 else order[::-1]:
        out[name].samples.append(measure(cmd, env, server, args))


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


COLUMNS = {"cpu": ("CPU %", 6, 2), "rss": ("RSS MB", 7, 1), "appends": ("appends/s", 9, 1),
           "reply": ("reply %", 7, 1)}
"""Table columns: the Sample field, its heading, width and decimals."""


def print_scenarios(results: dict[str, Scenario], args: argparse.Namespace,
                    columns: Sequence[str], heading: str) -> None:
    """The machine, the rounds, and one row per scenario: medians of `columns`, each round's
    CPU in brackets."""
    print(f"machine: {machine()}")
    print(f"{args.rounds} rounds, {args.warmup:.0f} s warm-up, {args.window:.0f} s window; "
          "CPU in % of one core, medians (each round in brackets)")
    print(f"{heading:<36} " + " ".join(f"{COLUMNS[c][0]:>{COLUMNS[c][1]}}" for c in columns)
          + "  rounds")
    for s in results.values():
        cells = " ".join(f"{s.median(c):{COLUMNS[c][1]}.{COLUMNS[c][2]}f}" for c in columns)
        rounds = ", ".join(f"{x.cpu:.2f}" for x in s.samples)
        print(f"{s.name:<36} {cells}  [{rounds}]")


def spread_ms(values: Sequence[float], scale: float = 1000.0) -> str:
    """Median and range of `values` in ms (`scale` 1: they are ms already), and their count."""
    ms = sorted(v * scale for v in values)
    return f"{statistics.median(ms):7.1f} ms  (min {ms[0]:.1f}, max {ms[-1]:.1f}, n={len(ms)})"

