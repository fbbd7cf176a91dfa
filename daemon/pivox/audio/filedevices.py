"""WAV files as a paced microphone and speaker, for machines with no sound card.

`FileMicrophone` plays a 24 kHz mono PCM16 WAV into `on_frame`, one 20 ms frame per
period against fixed deadlines, then silence; `FileSpeaker` reads the ring once per
period, as a sound card's callback would, and writes what it got to a WAV file. Both run
one thread, like PortAudio, and offer the same `start`/`close`/`alive`/`error` surface
as `pivox.audio.soundcard`'s devices. `speed` > 1 runs their periods that many times
faster than real time (compressed-time soak runs).
"""

from __future__ import annotations

import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

from pivox.audio.soundcard import FRAME_MS, RATE, SAMPLE_BYTES, STALL_S, PcmSource, PcmTap
from pivox.core.errors import DeviceError


def read_wav(path: str | Path) -> bytes:
    """The PCM of a 24 kHz mono 16-bit WAV; anything else is a DeviceError naming the file."""
    try:
        with wave.open(str(path), "rb") as wav:
            shape = (wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
            if shape != (RATE, 1, SAMPLE_BYTES):
                raise DeviceError(
                    f"expected a {RATE} Hz mono 16-bit wav, got {shape[0]} Hz, "
                    f"{shape[1]} channel(s), {8 * shape[2]}-bit", device=str(path))
            return wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise DeviceError(f"cannot read wav: {exc}", device=str(path)) from exc


def write_wav(path: str | Path, pcm: bytes) -> None:
    """Write 24 kHz mono PCM16 as a WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_BYTES)
        wav.setframerate(RATE)
        wav.writeframes(pcm)


class _PacedDevice:
    """A thread that calls `_period()` every frame_ms against fixed deadlines."""

    kind = "device"

    def __init__(self, path: str | Path, frame_ms: int, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.path = Path(path)
        self.label = f"{self.kind} file {self.path}"
        self.frame_bytes = RATE * frame_ms // 1000 * SAMPLE_BYTES
        self.period_s = frame_ms / 1000 / speed
        self.error: str | None = None
        self.callbacks = 0
        self._last_callback = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the pacing thread (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._last_callback = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=self.label, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread; never raises."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None

    def alive(self, now: float) -> bool:
        """True while the thread runs and its last period came within STALL_S of `now`."""
        return self._thread is not None and self.error is None and (
            now - self._last_callback < STALL_S
        )

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            self.callbacks += 1
            self._last_callback = time.monotonic()
            self._period()
            deadline += self.period_s
            delay = deadline - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                deadline = time.monotonic()  # fell behind: do not burst to catch up

    def _period(self) -> None:
        raise NotImplementedError


class FileMicrophone(_PacedDevice):
    """Plays a WAV file's PCM into `on_frame` in real time, then silence; `finished` is set."""

    kind = "input"

    def __init__(self, path: str | Path, *, on_frame: Callable[[bytes], None],
                 frame_ms: int = FRAME_MS, speed: float = 1.0) -> None:
        super().__init__(path, frame_ms, speed)
        self._pcm = read_wav(path)
        self._pos = 0
        self._silence = bytes(self.frame_bytes)
        self._on_frame = on_frame
        self.finished = threading.Event()

    def _period(self) -> None:
        frame = self._pcm[self._pos:self._pos + self.frame_bytes]
        self._pos += len(frame)
        if len(frame) < self.frame_bytes:
            self.finished.set()
            frame = frame + self._silence[len(frame):]
        self._on_frame(frame)


class FileSpeaker(_PacedDevice):
    """Reads one period from the ring each frame_ms and keeps it; `close()` writes the WAV.

    With `keep=False` what is played is counted but neither kept nor written (long runs).
    """

    kind = "output"

    def __init__(self, ring: PcmSource, path: str | Path, *, frame_ms: int = FRAME_MS,
                 speed: float = 1.0, keep: bool = True, far_end: PcmTap | None = None) -> None:
        super().__init__(path, frame_ms, speed)
        self._keep = keep
        self._ring = ring
        self._far_end = far_end
        self._buf = bytearray(self.frame_bytes)
        self._view = memoryview(self._buf)
        self._out = bytearray()
        self.audible = 0
        """Bytes of real (not underrun) audio played so far."""

    def _period(self) -> None:
        got = self._ring.read_into(self._view)
        if got:
            self.audible += got
        if self._far_end is not None:
            self._far_end.write(self._view)
        if self._keep:
            self._out += self._buf

    def close(self) -> None:
        """Stop and write everything played (silence included) to the WAV file."""
        running = self._thread is not None
        super().close()
        if running and self._keep:
            write_wav(self.path, bytes(self._out))
