"""The sound card edge: `Speaker` and `Microphone` on PyAudio, device lookup by name.

Both run PortAudio streams in callback mode, 16-bit mono, 24 kHz (the Realtime API's
PCM16 rate) when the device supports it, else at the device's own rate with a
`pivox.core.resample.Resampler` in between. Their callbacks run on PortAudio's thread:

- `Speaker` reads each period from an `AudioRing` (`read_into`, which zero-fills and
  counts underruns); the ring is the only object shared with the loop while the stream
  runs (`flush()` reads the callback's own log only once the callback thread has ended).
  Each period, after volume and before resampling, also goes to an optional far-end tap
  (`pivox.core.farend.FarEnd`): the echo canceller's reference, shared with the mic's thread.
- `Microphone` hands each 20 ms frame to `on_frame`, still on PortAudio's thread: the
  daemon passes a function that only does `loop.call_soon_threadsafe(...)`; it must not
  block, or the stream overflows.

Health for a watchdog: `callbacks` counts calls, `alive(now)` is False once no callback
came for `STALL_S` seconds (device gone, stream dead), `error` keeps the last failure.
`start()`, `stop()` and `close()` are idempotent and `start()` after `close()` reopens
(with a fresh PortAudio, so a device plugged back in is found); failures raise
`DeviceError` naming the device and PortAudio's error text and code. `close()` aborts
(Pa_AbortStream), never drains. Any of them can block when the sound server stalls: the
daemon makes them through `pivox.audio.devicecall`, off its loop, with a deadline.

Latency: PyAudio 0.2.14 gives no way to pass a suggested latency (it asks for the
device's default low latency), so the Speaker's `latency_ms` reaches PulseAudio through
`PULSE_LATENCY_MSEC`, which libpulse (under ALSA's pulse plugin) reads when a stream
connects: it is set in os.environ before PortAudio starts, unless already set.

Barge-in: `Speaker.flush()` aborts the stream (Pa_AbortStream: PortAudio drops what ALSA and
PulseAudio still hold), then opens and starts a fresh stream before closing the aborted one
(about 5 ms in all). Restarting the same stream instead reconnects it to PulseAudio, and a
sink left with no client (the null sink here) stalls the next reply ~1.4 s. It returns the
ring bytes handed but not yet heard, from each recent callback's `output_buffer_dac_time -
current_time` (when its first sample reaches the DAC).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self

import numpy as np

from pivox.core.errors import DeviceError
from pivox.core.resample import Resampler
from pivox.host.optional import require

if TYPE_CHECKING:
    import pyaudio  # type: ignore[import-untyped]

log = logging.getLogger("pivox.audio")

RATE = 24000
SAMPLE_BYTES = 2
FRAME_MS = 20
# PulseAudio buffer target. 20 ms (one period) underruns: ~20 ms holes in the sound, a few
# per second at 44.1 kHz, now and then at 24 kHz; 30 ms still did under CPU load; 40 did not.
LATENCY_MS = 40
STALL_S = 1.0
HANDED_LOG = 16
"""Callbacks `flush()` looks back at (320 ms of 20 ms periods, more than any buffer seen)."""
Kind = Literal["input", "output"]
# PortAudio's paStreamCallbackResult values (pyaudio.paContinue / paAbort).
_CONTINUE = 0
_ABORT = 2


class PcmSource(Protocol):
    """What the Speaker reads from: `pivox.core.ring.AudioRing`'s consumer side."""

    @property
    def available(self) -> int:
        """Bytes queued and not yet read."""
        ...

    def read_into(self, out: memoryview) -> int:
        """Fill `out` with the next bytes (zeros past the end); return how many were real."""
        ...


class PcmTap(Protocol):
    """Where the Speaker records what it handed out: `pivox.core.farend.FarEnd`'s producer side."""

    def write(self, pcm: bytes | bytearray | memoryview) -> None:
        """Append PCM the sound card was handed (24 kHz, after volume)."""
        ...

    def unwrite(self, n: int) -> None:
        """Take back the last `n` bytes: handed, but dropped unheard by a flush."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo:
    """One PortAudio device as `list_devices` sees it."""

    index: int
    name: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float
    host_api: str
    default_input: bool = False
    default_output: bool = False

    def has(self, kind: Kind) -> bool:
        """True if the device has channels of `kind`."""
        channels = self.max_input_channels if kind == "input" else self.max_output_channels
        return channels > 0

    def is_default(self, kind: Kind) -> bool:
        """True if PortAudio names this device its default of `kind`."""
        return self.default_input if kind == "input" else self.default_output


def _pyaudio_module() -> Any:
    """PyAudio, imported lazily: hardware libraries are imported inside their adapter."""
    return require("pyaudio", "PyAudio", "audio", apt="python3-pyaudio")


def open_portaudio(latency_ms: int = LATENCY_MS) -> pyaudio.PyAudio:
    """Start PortAudio; first set PULSE_LATENCY_MSEC=`latency_ms` unless the environment has it."""
    os.environ.setdefault("PULSE_LATENCY_MSEC", str(latency_ms))
    _quiet_alsa()
    _quiet_jack()
    return _pyaudio_module().PyAudio()


_alsa_handler: Any = None


def _quiet_alsa() -> None:
    """Send alsa-lib's stderr chatter (dozens of lines per PortAudio start) to debug logs."""
    global _alsa_handler
    if _alsa_handler is not None:
        return
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("asound")
    if name is None:
        _alsa_handler = False
        return
    # void (*)(const char *file, int line, const char *function, int err, const char *fmt, ...)
    prototype = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
    )

    def handler(file: bytes, line: int, function: bytes, err: int, fmt: bytes) -> None:
        log.debug(
            "alsa-lib %s: %s (error %d)",
            function.decode(errors="replace"),
            fmt.decode(errors="replace"),
            err,
        )

    _alsa_handler = prototype(handler)
    ctypes.CDLL(name).snd_lib_error_set_handler(_alsa_handler)


_jack_silencer: Any = None


def _quiet_jack() -> None:
    """Silence libjack, which Debian's PortAudio links: each PortAudio start probes for a JACK
    server and, with none running, libjack prints three or more lines to stderr (the journal).

    Its error and info callbacks become no-ops; nothing in them is news (pivox never uses JACK).
    """
    global _jack_silencer
    if _jack_silencer is not None:
        return
    import ctypes

    try:
        jack = ctypes.CDLL("libjack.so.0")  # the library PortAudio loaded, or will load
    except OSError:  # no libjack here: nothing to silence
        _jack_silencer = False
        return
    _jack_silencer = ctypes.CFUNCTYPE(None, ctypes.c_char_p)(lambda message: None)
    jack.jack_set_error_function(_jack_silencer)
    jack.jack_set_info_function(_jack_silencer)


def list_devices(pa: pyaudio.PyAudio | None = None) -> list[DeviceInfo]:
    """Every PortAudio device, in index order; starts (and ends) PortAudio if `pa` is None."""
    own = pa is None
    if pa is None:
        pa = open_portaudio()
    try:
        default_in = _default_index(pa.get_default_input_device_info)
        default_out = _default_index(pa.get_default_output_device_info)
        devices = []
        for index in range(pa.get_device_count()):
            raw = pa.get_device_info_by_index(index)
            devices.append(
                DeviceInfo(
                    index=index,
                    name=str(raw["name"]),
                    max_input_channels=int(raw["maxInputChannels"]),
                    max_output_channels=int(raw["maxOutputChannels"]),
                    default_sample_rate=float(raw["defaultSampleRate"]),
                    host_api=str(pa.get_host_api_info_by_index(int(raw["hostApi"]))["name"]),
                    default_input=index == default_in,
                    default_output=index == default_out,
                )
            )
        return devices
    finally:
        if own:
            pa.terminate()


def _default_index(getter: Callable[[], dict[str, Any]]) -> int:
    try:
        return int(getter()["index"])
    except OSError:  # PortAudio has no default device of that kind
        return -1


def select_device(devices: Sequence[DeviceInfo], wanted: str | int, kind: Kind) -> DeviceInfo:
    """The device of `kind` that `wanted` names: "" = default, an index, or a name substring.

    A name matches case-insensitively; an exact name wins over substrings, and a
    substring must match exactly one device. A digit string counts as an index.
    """
    candidates = [d for d in devices if d.has(kind)]
    label = str(wanted) if wanted != "" else f"default {kind}"
    if isinstance(wanted, int) or wanted.isdigit():
        found = [d for d in candidates if d.index == int(wanted)]
    elif wanted == "":
        found = [d for d in candidates if d.is_default(kind)] or candidates[:1]
    else:
        needle = wanted.casefold()
        found = [d for d in candidates if d.name.casefold() == needle] or [
            d for d in candidates if needle in d.name.casefold()
        ]
    if len(found) == 1:
        return found[0]
    names = ", ".join(f"{d.index}: {d.name}" for d in found or candidates) or "none"
    problem = "matches several" if found else "matches no"
    raise DeviceError(f"{problem} {kind} device; candidates: {names}", device=label)


def format_devices(
    devices: Sequence[DeviceInfo], input_wanted: str | int = "", output_wanted: str | int = ""
) -> str:
    """The `pivox devices` table; `<in` / `<out` mark what the config would select."""
    picked: dict[Kind, int] = {}
    notes = []
    wanted_by_kind: tuple[tuple[Kind, str | int], ...] = (
        ("input", input_wanted),
        ("output", output_wanted),
    )
    for kind, wanted in wanted_by_kind:
        try:
            picked[kind] = select_device(devices, wanted, kind).index
        except DeviceError as exc:
            notes.append(f"{kind}: {exc}")
    lines = [f"{'idx':>3}  {'in':>3} {'out':>3}  {'rate':>6}  {'host api':<8}  name"]
    tags: tuple[tuple[Kind, str], ...] = (("input", "<in"), ("output", "<out"))
    for d in devices:
        marks = [mark for kind, mark in tags if picked.get(kind) == d.index]
        lines.append(
            f"{d.index:>3}  {d.max_input_channels:>3} {d.max_output_channels:>3}  "
            f"{d.default_sample_rate:>6.0f}  {d.host_api:<8}  {d.name}  {' '.join(marks)}".rstrip()
        )
    return "\n".join(lines + notes)


def _device_error(exc: Exception, device: str, doing: str) -> DeviceError:
    # PyAudio raises OSError(error text, PortAudio error code) and ValueError(text, code).
    text = next((a for a in exc.args if isinstance(a, str)), str(exc))
    code = next((a for a in exc.args if isinstance(a, int)), None)
    suffix = f" (portaudio error {code})" if code is not None else ""
    return DeviceError(f"cannot {doing}: {text.lower()}{suffix}", device=device)


def _gain(volume: int) -> int | None:
    """Volume 0..100 as a Q15 gain, or None at 100 (bytes pass unchanged)."""
    if not 0 <= volume <= 100:
        raise ValueError(f"volume must be 0..100, got {volume}")
    return None if volume == 100 else volume * 32768 // 100


class _Stream:
    """What Speaker and Microphone share: open/start/stop/close and health."""

    kind: Kind

    def __init__(self, device: str | int, rate: int, frame_ms: int, latency_ms: int) -> None:
        self.device = device
        self.rate = rate
        self.frame_ms = frame_ms
        self.latency_ms = latency_ms
        self.callbacks = 0
        self.error: str | None = None
        self.info: DeviceInfo | None = None
        self.device_rate = rate
        self._frames = rate * frame_ms // 1000
        self._last_callback = 0.0
        self._pa: Any = None
        self._stream: Any = None

    @property
    def label(self) -> str:
        """The device as configured, for messages."""
        return str(self.device) if self.device != "" else f"default {self.kind}"

    def start(self) -> None:
        """Open the device if needed and start the stream; raises DeviceError."""
        if self._stream is None:
            self._open()
        if self._stream.is_active():
            return
        self.error = None
        self._last_callback = time.monotonic()
        try:
            if not self._stream.is_stopped():  # the callback aborted it
                self._stream.stop_stream()
            self._stream.start_stream()
        except OSError as exc:
            raise _device_error(exc, self.label, f"start {self.kind} stream") from exc

    def stop(self) -> None:
        """Stop the stream, letting what it holds play out (the device stays open); never raises."""
        if self._stream is None:
            return
        try:
            if not self._stream.is_stopped():
                self._stream.stop_stream()
        except OSError as exc:
            log.warning("stopping %s failed: %s", self.label, exc)

    def close(self) -> None:
        """Abort (never drain) and release the stream and PortAudio; `start()` reopens.

        Never raises. Like every PortAudio call it may block when the sound server stalls:
        the daemon calls it through `pivox.audio.devicecall`, with a deadline.
        """
        stream, pa = self._stream, self._pa
        self._stream = self._pa = None
        if stream is not None:
            self._abort(stream)
            try:
                stream.close()
            except OSError as exc:
                log.warning("closing %s failed: %s", self.label, exc)
        if pa is not None:
            pa.terminate()

    def _abort(self, stream: Any) -> bool:
        """Pa_AbortStream: drop what PortAudio and the sound server hold; False if it failed."""
        try:
            if not stream.is_stopped():
                # PyAudio 0.2.14 wraps Pa_AbortStream in its C module but not on Stream.
                _pyaudio_module()._portaudio.abort_stream(stream._stream)
        except OSError as exc:
            log.warning("aborting %s failed: %s", self.label, exc)
            return False
        return True

    def alive(self, now: float) -> bool:
        """True while the stream runs and its callback came within STALL_S of `now` (monotonic)."""
        if self._stream is None or self.error is not None:
            return False
        try:
            active = bool(self._stream.is_active())
        except OSError:  # the device went away under the stream
            return False
        return active and now - self._last_callback < STALL_S

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self) -> None:
        pa = open_portaudio(self.latency_ms)
        try:
            info = select_device(list_devices(pa), self.device, self.kind)
            rate = (
                self.rate if self._supports(pa, info, self.rate) else int(info.default_sample_rate)
            )
            self._prepare(rate)
            self._stream = self._open_stream(pa, info, rate)
        except (OSError, ValueError) as exc:
            pa.terminate()
            raise _device_error(exc, self.label, f"open {self.kind} stream") from exc
        except BaseException:
            pa.terminate()
            raise
        self._pa, self.info, self.device_rate = pa, info, rate
        log.info("%s %s opened: %r at %d Hz", self.kind, self.label, info.name, rate)

    def _open_stream(self, pa: pyaudio.PyAudio, info: DeviceInfo, rate: int) -> Any:
        """A new, stopped PortAudio stream on `info` at `rate` that calls `_callback`."""
        return pa.open(
            format=_pyaudio_module().paInt16,
            channels=1,
            rate=rate,
            frames_per_buffer=rate * self.frame_ms // 1000,
            start=False,
            stream_callback=self._callback,
            **{self.kind: True, f"{self.kind}_device_index": info.index},
        )

    def _supports(self, pa: pyaudio.PyAudio, info: DeviceInfo, rate: int) -> bool:
        """True if the device takes mono paInt16 at `rate`."""
        kind = self.kind
        try:
            return bool(
                pa.is_format_supported(
                    rate,
                    **{
                        f"{kind}_device": info.index,
                        f"{kind}_channels": 1,
                        f"{kind}_format": _pyaudio_module().paInt16,
                    },
                )
            )
        except ValueError:
            return False

    def _mark_callback(self) -> None:
        self.callbacks += 1
        self._last_callback = time.monotonic()

    def _prepare(self, device_rate: int) -> None:
        """Set up everything the callback reads, before the stream exists."""
        raise NotImplementedError

    def _callback(
        self, in_data: bytes | None, frame_count: int, time_info: dict[str, float], status: int
    ) -> tuple[bytes | None, int]:
        raise NotImplementedError


class Speaker(_Stream):
    """Plays what an AudioRing holds, one period per PortAudio callback."""

    kind: Kind = "output"

    def __init__(
        self,
        ring: PcmSource,
        device: str | int = "",
        rate: int = RATE,
        frame_ms: int = FRAME_MS,
        latency_ms: int = LATENCY_MS,
        volume: int = 100,
        far_end: PcmTap | None = None,
    ) -> None:
        super().__init__(device, rate, frame_ms, latency_ms)
        self._ring = ring
        self._far_end = far_end
        self._gain = _gain(volume)
        self._buf = bytearray(self._frames * SAMPLE_BYTES)
        self._view = memoryview(self._buf)
        self._samples = np.frombuffer(self._buf, dtype=np.int16)
        self._scaled = np.empty(self._frames, dtype=np.int32)
        self._resampler: Resampler | None = None
        self._pending = bytearray()
        # Written by the callback thread only; read by flush() only after Pa_AbortStream has
        # joined that thread and before the stream restarts, so the two never overlap.
        # Per callback: (DAC time of its first sample, ring bytes in it, 24 kHz bytes in it).
        self._handed: deque[tuple[float, int, int]] = deque(maxlen=HANDED_LOG)
        self._got = 0
        self._periods = 0
        self._silent = False  # the buffer holds a period of zeros: the last read got nothing

    def set_volume(self, volume: int) -> None:
        """Change the volume (0..100) from the next period on; one attribute the callback reads."""
        self._gain = _gain(volume)

    def flush(self) -> int:
        """Silence at once: drop what PortAudio/PulseAudio hold and restart the stream.

        Returns the bytes of ring audio handed to the stream that never reached the DAC
        (estimated from the callbacks' DAC times; within a period when resampling); 0 if the
        stream is not running. The far-end tap takes back all it was handed unheard.
        Never raises: a failed restart leaves `alive()` False.
        """
        stream = self._stream
        if stream is None or not stream.is_active():
            return 0
        if not self._abort(stream):
            return 0
        now = time.monotonic()
        heard = [(max(0, int((now - dac) * self.rate)) * SAMPLE_BYTES, got, total)
                 for dac, got, total in self._handed]
        unheard = sum(max(0, got - done) for done, got, _ in heard)
        if self._far_end is not None:
            self._far_end.unwrite(sum(max(0, total - done) for done, _, total in heard))
        self._handed.clear()
        self._pending = bytearray()
        assert self.info is not None
        try:
            self._stream = self._open_stream(self._pa, self.info, self.device_rate)
            self.start()
        except (OSError, ValueError, DeviceError) as exc:  # alive() stays False: the watchdog
            log.warning("reopening %s after a flush failed: %s", self.label, exc)
        finally:
            stream.close()  # only now: it kept the sink awake while the new stream connected
        return unheard

    def _prepare(self, device_rate: int) -> None:
        self._pending = bytearray()
        self._handed.clear()
        self._resampler = Resampler(self.rate, device_rate) if device_rate != self.rate else None

    def _callback(
        self, in_data: bytes | None, frame_count: int, time_info: dict[str, float], status: int
    ) -> tuple[bytes | None, int]:
        self._mark_callback()
        self._got = self._periods = 0
        try:
            if self._resampler is None and frame_count == self._frames:
                # PyAudio only takes immutable bytes: one copy of the preallocated period.
                out = bytes(self._read_period())
            else:
                need = frame_count * SAMPLE_BYTES
                while len(self._pending) < need:
                    period = self._read_period()
                    self._pending += self._resampler.process(period) if self._resampler else period
                out = bytes(self._pending[:need])
                del self._pending[:need]
            # When this buffer's first sample reaches the DAC, on the monotonic clock.
            lead = time_info["output_buffer_dac_time"] - time_info["current_time"]
            self._handed.append((self._last_callback + lead, self._got,
                                 self._periods * len(self._buf)))
            return out, _CONTINUE
        except Exception as exc:
            self.error = f"speaker callback failed: {exc!r}"
            log.exception("speaker callback failed")
            return None, _ABORT

    def _read_period(self) -> bytearray:
        """Next period from the ring into the preallocated buffer, scaled by the volume
        (while nothing is queued after a silent period, the buffer is that silence already)."""
        self._periods += 1
        if not self._silent or self._ring.available:
            got = self._ring.read_into(self._view)
            self._got += got
            self._silent = not got
            gain = self._gain
            if gain is not None:  # Q15 gain <= 1: the product's top bits always fit in int16
                np.multiply(self._samples, gain, out=self._scaled, dtype=np.int32)
                np.right_shift(self._scaled, 15, out=self._scaled)
                self._samples[:] = self._scaled
        if self._far_end is not None:
            self._far_end.write(self._view)
        return self._buf


class Microphone(_Stream):
    """Captures 20 ms frames of 24 kHz PCM16 and hands each to `on_frame` on PortAudio's thread."""

    kind: Kind = "input"

    def __init__(
        self,
        device: str | int = "",
        rate: int = RATE,
        frame_ms: int = FRAME_MS,
        *,
        on_frame: Callable[[bytes], None],
        latency_ms: int = LATENCY_MS,
    ) -> None:
        super().__init__(device, rate, frame_ms, latency_ms)
        self._on_frame = on_frame
        self._frame_bytes = self._frames * SAMPLE_BYTES
        self._resampler: Resampler | None = None
        self._pending = bytearray()

    def _prepare(self, device_rate: int) -> None:
        self._pending = bytearray()
        self._resampler = Resampler(device_rate, self.rate) if device_rate != self.rate else None

    def _callback(
        self, in_data: bytes | None, frame_count: int, time_info: dict[str, float], status: int
    ) -> tuple[bytes | None, int]:
        self._mark_callback()
        try:
            assert in_data is not None
            if self._resampler is None and len(in_data) == self._frame_bytes:
                self._on_frame(in_data)
                return None, _CONTINUE
            self._pending += self._resampler.process(in_data) if self._resampler else in_data
            size = self._frame_bytes
            while len(self._pending) >= size:
                frame = bytes(self._pending[:size])
                del self._pending[:size]
                self._on_frame(frame)
            return None, _CONTINUE
        except Exception as exc:
            self.error = f"microphone callback failed: {exc!r}"
            log.exception("microphone callback failed")
            return None, _ABORT
