"""A private, paced PulseAudio for tests and benchmarks (no pytest needed).

`PulseAudio()` starts `pulseaudio -n --daemonize=no` as a child with its own
XDG_RUNTIME_DIR, a null sink `pivox_speaker` (24 kHz mono) as the speaker and a pipe
source `pivox_mic` (24 kHz mono s16le) as the mic, both defaults. It points this
process at it (os.environ XDG_RUNTIME_DIR and PULSE_SERVER, so in-process PyAudio
uses it) and gives `env` for child processes. A `MicWriter` thread paces the pipe
source (960 bytes every 20 ms against fixed deadlines, the recipe of TESTING.md);
`record()` captures the sink monitor with `parec`. Leaving the context stops all.

`PulseAudio(room=True)` builds the echo room of TESTING.md instead: the pipe source is the
user's voice, and the mic (the default source) is the monitor of a second null sink
`pivox_room`, into which two loopbacks mix the user and the speaker's monitor (the echo,
`echo_ms` late, ECHO_LATENCY_MS by default; `set_echo_db` sets its level, `echo_delay_ms`
measures its delay).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from types import TracebackType

RATE = 24000
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
SINK = "pivox_speaker"
SOURCE = "pivox_mic"
# The FIFO's kernel buffer bounds the stale audio a new recording stream gets first
# (64 KiB = 1.4 s by default); one page holds 85 ms.
PIPE_BYTES = 4096
START_TIMEOUT_S = 10.0
ROOM = "pivox_room"
ECHO_LATENCY_MS = 30
USER_LATENCY_MS = 20

_SCRIPT = """\
load-module module-native-protocol-unix auth-anonymous=1
load-module module-null-sink sink_name={sink} rate={rate} channels=1 \
sink_properties=device.description={sink}
load-module module-pipe-source source_name={source} file={fifo} rate={rate} channels=1 \
format=s16le
set-default-sink {sink}
"""
_PLAIN = """\
set-default-source {source}
"""
_ROOM = """\
load-module module-null-sink sink_name={room} rate={rate} channels=1 \
sink_properties=device.description={room}
load-module module-loopback source={source} sink={room} latency_msec={user_ms} \
source_dont_move=true sink_dont_move=true
load-module module-loopback source={sink}.monitor sink={room} latency_msec={echo_ms} \
source_dont_move=true sink_dont_move=true
set-default-source {room}.monitor
"""


class PulseError(RuntimeError):
    """The private PulseAudio could not be started or does not look as expected."""


class MicWriter:
    """Feeds the pipe source in real time: queued PCM first, then silence, 20 ms a write.

    Writes are non-blocking; while nobody records, PulseAudio does not read the FIFO and a
    silence frame that does not fit is dropped (queued PCM waits), so pacing never drifts.
    """

    def __init__(self, fifo: str) -> None:
        self._fifo = fifo
        self._lock = threading.Lock()
        self._queue = bytearray()
        self._stop = threading.Event()
        self._last_tick = 0.0
        self.frames_written = 0
        self.frames_dropped = 0
        self._fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._thread = threading.Thread(target=self._run, name="pulse-mic-writer", daemon=True)
        self._thread.start()

    def play(self, pcm: bytes) -> None:
        """Queue s16le mono 24 kHz PCM to be written after what is already queued."""
        with self._lock:
            self._queue += pcm

    @property
    def pending(self) -> int:
        """Bytes queued and not yet written to the FIFO."""
        with self._lock:
            return len(self._queue)

    def wait_played(self, timeout: float) -> bool:
        """Block until the queue is written out (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            time.sleep(FRAME_MS / 1000)
        return not self.pending

    @property
    def alive(self) -> bool:
        """True while the writer thread runs and ticked within the last half second."""
        return self._thread.is_alive() and time.monotonic() - self._last_tick < 0.5

    def stop(self) -> None:
        """Stop the thread and close the FIFO; idempotent."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _next_frame(self) -> tuple[bytes, bool]:
        with self._lock:
            if not self._queue:
                return bytes(FRAME_BYTES), False
            frame = bytes(self._queue[:FRAME_BYTES]).ljust(FRAME_BYTES, b"\0")
            return frame, True

    def _run(self) -> None:
        start = time.monotonic()
        tick = 0
        while not self._stop.is_set():
            self._last_tick = time.monotonic()
            frame, queued = self._next_frame()
            try:
                os.write(self._fd, frame)
            except BlockingIOError:
                self.frames_dropped += 1
            else:
                self.frames_written += 1
                if queued:
                    with self._lock:
                        del self._queue[:FRAME_BYTES]
            tick += 1
            delay = start + tick * FRAME_MS / 1000 - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)


class Recording:
    """A running `parec` of the sink monitor; `stop()` returns the PCM it captured."""

    def __init__(self, env: dict[str, str], device: str) -> None:
        self._data = bytearray()
        self.marks: list[tuple[float, int]] = []
        """(time.monotonic(), bytes captured by then) at each chunk read."""
        self._proc = subprocess.Popen(
            [
                "parec",
                "-d",
                device,
                "--raw",
                f"--rate={RATE}",
                "--channels=1",
                "--format=s16le",
                "--latency-msec=20",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._thread = threading.Thread(target=self._pump, name="pulse-recorder", daemon=True)
        self._thread.start()

    @property
    def size(self) -> int:
        """Bytes captured so far."""
        return len(self._data)

    def stop(self) -> bytes:
        """Stop recording and return everything captured; idempotent."""
        if self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=5)
        self._thread.join(timeout=5)
        return bytes(self._data)

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        while chunk := self._proc.stdout.read1(65536):
            self._data += chunk
            self.marks.append((time.monotonic(), len(self._data)))

    def captured_at(self, offset: int) -> float:
        """When the byte at `offset` had reached the monitor at the latest (monotonic): the
        arrival of its chunk, less the audio after it in that chunk."""
        for at, size in self.marks:
            if size > offset:
                return at - (size - offset) / (RATE * 2)
        raise ValueError(f"offset {offset} not captured")


class PulseAudio:
    """A private PulseAudio server with a paced mic (or an echo room); a context manager."""

    def __init__(self, *, room: bool = False, echo_ms: int = ECHO_LATENCY_MS) -> None:
        self.room = room
        self.echo_ms = echo_ms
        self.dir = ""
        self.env: dict[str, str] = {}
        self.mic: MicWriter | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._saved_env: dict[str, str | None] = {}

    def __enter__(self) -> PulseAudio:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the server, wait until it answers, check the sources, start the mic writer."""
        if shutil.which("pulseaudio") is None:
            raise PulseError("pulseaudio is not installed (apt-get install pulseaudio)")
        self.dir = tempfile.mkdtemp(prefix="pivox-pulse-")
        runtime = os.path.join(self.dir, "runtime")
        os.mkdir(runtime, 0o700)
        fifo = os.path.join(self.dir, "mic.fifo")
        script = os.path.join(self.dir, "pa.pa")
        with open(script, "w") as f:
            f.write(_SCRIPT.format(sink=SINK, source=SOURCE, rate=RATE, fifo=fifo))
            f.write((_ROOM if self.room else _PLAIN).format(
                sink=SINK, source=SOURCE, room=ROOM, rate=RATE,
                user_ms=USER_LATENCY_MS, echo_ms=self.echo_ms))
        self.env = {
            **os.environ,
            "HOME": self.dir,
            "XDG_RUNTIME_DIR": runtime,
            "PULSE_SERVER": f"unix:{runtime}/pulse/native",
        }
        with open(os.path.join(self.dir, "pulseaudio.log"), "wb") as log:
            self._proc = subprocess.Popen(
                [
                    "pulseaudio",
                    "-n",
                    "--daemonize=no",
                    "--system=false",
                    "--exit-idle-time=-1",
                    "--disallow-exit",
                    "--use-pid-file=false",
                    "--log-target=stderr",
                    "-F",
                    script,
                ],
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            self._wait_ready()
            self._check_sources()
            self.mic = MicWriter(fifo)
        except BaseException:
            self.close()
            raise
        for key in ("XDG_RUNTIME_DIR", "PULSE_SERVER"):
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = self.env[key]

    def pactl(self, *args: str) -> str:
        """Run `pactl ARGS` against this server and return its stdout."""
        done = subprocess.run(
            ["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10
        )
        if done.returncode != 0:
            raise PulseError(f"pactl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def record(self, device: str = f"{SINK}.monitor") -> Recording:
        """Start capturing what the speaker sink plays (its monitor), as raw s16le 24 kHz."""
        return Recording(self.env, device)

    def loopback_input(self, source: str) -> int:
        """The index of the sink input of the room's loopback from `source`."""
        modules = {}
        for line in self.pactl("list", "short", "modules").splitlines():
            index, name, args = [*line.split("\t"), "", ""][:3]
            if name == "module-loopback" and f"source={source} " in args + " ":
                modules[index] = args
        if len(modules) != 1:
            raise PulseError(f"expected one loopback from {source}, found {modules}")
        (module,) = modules
        index = None
        for line in self.pactl("list", "sink-inputs").splitlines():
            line = line.strip()
            if line.startswith("Sink Input #"):
                index = int(line.removeprefix("Sink Input #"))
            elif line == f"Owner Module: {module}" and index is not None:
                return index
        raise PulseError(f"no sink input of loopback module {module}")

    def set_echo_db(self, db: float) -> None:
        """Room only: the level of the speaker's echo in the mic, in dB (0: as played)."""
        self._set_volume_db(f"{SINK}.monitor", db)

    def set_user_db(self, db: float) -> None:
        """Room only: the level of the user's voice in the mic, in dB."""
        self._set_volume_db(SOURCE, db)

    def _set_volume_db(self, source: str, db: float) -> None:
        # pactl reads "-6dB" as 6 dB less than now (a sign means relative): pass the raw
        # volume, which is cubic in amplitude (pa_sw_volume_from_dB)
        raw = round(65536 * 10 ** (db / 60))
        self.pactl("set-sink-input-volume", str(self.loopback_input(source)), str(raw))

    @contextlib.contextmanager
    def recording(self) -> Iterator[Recording]:
        """`with pulse.recording() as rec:` ... `rec.stop()` is also called on exit."""
        rec = self.record()
        try:
            yield rec
        finally:
            rec.stop()

    @property
    def log(self) -> str:
        """The server's log so far, for failure messages."""
        try:
            with open(os.path.join(self.dir, "pulseaudio.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self) -> None:
        """Stop the mic writer and the server, restore os.environ, remove the dirs."""
        if self.mic is not None:
            self.mic.stop()
            self.mic = None
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=5)
            self._proc = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = ""

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PulseError(f"pulseaudio exited with {self._proc.returncode}:\n{self.log}")
            done = subprocess.run(["pactl", "info"], env=self.env, capture_output=True)
            if done.returncode == 0:
                return
            time.sleep(0.05)
        raise PulseError(f"pulseaudio did not answer within {START_TIMEOUT_S} s:\n{self.log}")

    def _check_sources(self) -> None:
        rows = [line.split("\t") for line in self.pactl("list", "short", "sources").splitlines()]
        drivers = {row[1]: row[2] for row in rows if len(row) > 2}
        if drivers.get(SOURCE) != "module-pipe-source.c":
            raise PulseError(f"{SOURCE} is not a pipe source; sources: {drivers}\n{self.log}")
