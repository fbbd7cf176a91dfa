"""The echo self-test of `pivox check`: play a chirp on the real speaker, record the mic.

Reports the echo's delay from the speaker to the mic (the chirp's first sample at the DAC, as
PortAudio stamps the speaker callback, to the same sample at the ADC, found by
cross-correlating the recording with the chirp and placed by the mic callback's stamp), the
echo's level, and the ERLE the canceller reaches on the recording with the played signal as
its reference, and says whether always-on listening will work in this room.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from pivox.audio.aec import EchoCanceller, erle_db
from pivox.audio.soundcard import RATE, SAMPLE_BYTES, Microphone, Speaker
from pivox.core.ring import AudioRing

__all__ = ["EchoReport", "chirp", "measure_echo"]

CHIRP_S = 0.5
REPEATS = 8
"""Chirps played back to back (4 s): the canceller converges on the first ones."""
WARM_UP_S = 1.0
"""Both streams run this long before the chirps (a PulseAudio null sink's first callbacks
come in a burst whose timestamps are off by 50 ms)."""
SETTLE_S = 2.0
"""ERLE is measured on what follows the first SETTLE_S of the chirps."""
LEAD_MS = 20
"""How far the reference is placed ahead of the echo found, as the daemon's pairing does."""
MIN_CORR = 0.3
MAX_DELAY_S = 0.45
MAX_RESIDUAL_DB = -20.0
"""Echo left after the canceller, relative to what was played, that always-on listening
stands: speech played at -20 dBFS then leaves -40 dBFS, far under a VAD at -30 dBFS (the
echo room's replies at -6 and 0 dB, where the chirps measured 18-47 dB ERLE, never
interrupted themselves)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoReport:
    """What the self-test measured; `delay_ms` is None when no echo of the chirp was found."""

    delay_ms: float | None
    echo_db: float | None
    """Echo level in the mic relative to what was played, in dB."""
    erle_db: float | None
    correlation: float

    @property
    def residual_db(self) -> float | None:
        """Echo left after the canceller relative to what was played, in dB."""
        if self.echo_db is None or self.erle_db is None:
            return None
        return self.echo_db - self.erle_db

    @property
    def works(self) -> bool:
        """True if always-on listening will not hear its own replies."""
        residual = self.residual_db
        return residual is None or residual <= MAX_RESIDUAL_DB

    @property
    def verdict(self) -> str:
        """One plain sentence on whether always-on listening will work."""
        if self.delay_ms is None:
            return ("no echo of the chirp reached the mic (speaker muted or far away): "
                    "nothing to cancel")
        erle, residual = self.erle_db or 0.0, self.residual_db or 0.0
        if self.works:
            return (f"echo cancellation removes {erle:.0f} dB of echo, {residual:.0f} dB left: "
                    f"the device will not hear itself; always-on listening will work")
        return (f"echo cancellation removes {erle:.0f} dB of echo, {residual:.0f} dB left "
                f"(want {MAX_RESIDUAL_DB:.0f}): replies may interrupt themselves; lower "
                f"audio.volume, move the mic away from the speaker, or use push_to_talk")


def chirp(seconds: float = CHIRP_S, f0: float = 300.0, f1: float = 6000.0) -> np.ndarray:
    """A linear sweep at -12 dBFS with 10 ms fades, int16 at 24 kHz."""
    t = np.arange(int(RATE * seconds)) / RATE
    x = 0.25 * np.sin(2 * math.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds)))
    fade = int(RATE * 0.01)
    ramp = np.linspace(0.0, 1.0, fade)
    x[:fade] *= ramp
    x[-fade:] *= ramp[::-1]
    return (x * 32767).astype(np.int16)


class _StampedMicrophone(Microphone):
    """The real Microphone, noting for each frame when its first sample was captured."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.frames: list[tuple[float, bytes]] = []
        super().__init__(*args, on_frame=self._keep, **kwargs)
        self._adc = 0.0

    def _keep(self, frame: bytes) -> None:
        self.frames.append((self._adc, frame))

    def _callback(self, in_data: bytes | None, frame_count: int,
                  time_info: dict[str, float], status: int) -> tuple[bytes | None, int]:
        lag = time_info["current_time"] - time_info["input_buffer_adc_time"]
        self._adc = time.monotonic() - lag
        return super()._callback(in_data, frame_count, time_info, status)


class _StampedSpeaker(Speaker):
    """The real Speaker, noting the DAC time of the first callback that played ring audio."""

    first_dac: float | None = None

    def _callback(self, in_data: bytes | None, frame_count: int,
                  time_info: dict[str, float], status: int) -> tuple[bytes | None, int]:
        result = super()._callback(in_data, frame_count, time_info, status)
        if self.first_dac is None and self._got:
            # the ring was empty before: the chirp starts at this period's first sample
            self.first_dac = self._handed[-1][0]
        return result


def measure_echo(input_device: str | int = "", output_device: str | int = "",
                 timeout_s: float = 10.0) -> EchoReport:
    """Play the chirps, record the mic, and measure; raises DeviceError if a device fails."""
    played = np.tile(chirp(), REPEATS)
    ring = AudioRing(len(played) * SAMPLE_BYTES + RATE)
    speaker = _StampedSpeaker(ring, output_device)
    mic = _StampedMicrophone(input_device)
    try:
        speaker.start()
        mic.start()
        _wait(lambda: speaker.callbacks > 10 and len(mic.frames) > 10, timeout_s)
        warm = time.monotonic() + WARM_UP_S
        _wait(lambda: time.monotonic() > warm, timeout_s)
        ring.write(played.tobytes(), "chirp")
        _wait(lambda: ring.available == 0 and speaker.first_dac is not None, timeout_s)
        end = time.monotonic() + 0.5
        _wait(lambda: time.monotonic() > end, timeout_s)
    finally:
        mic.close()
        speaker.close()
    return analyse(mic.frames, played, speaker.first_dac)


def analyse(frames: list[tuple[float, bytes]], played: np.ndarray,
            first_dac: float | None) -> EchoReport:
    """The report from stamped mic frames, the played signal and its first DAC time."""
    mic = np.frombuffer(b"".join(f for _, f in frames), np.int16)
    per_frame = len(frames[0][1]) // SAMPLE_BYTES if frames else 1
    if first_dac is None or len(mic) < len(played):
        return EchoReport(delay_ms=None, echo_db=None, erle_db=None, correlation=0.0)
    # the first chirp's echo lies after the mic frame captured when it reached the DAC, and
    # within MAX_DELAY_S of it (one chirp is longer, so the next chirp cannot be mistaken)
    stamps = np.array([adc for adc, _ in frames])
    base = int(np.searchsorted(stamps, first_dac - 2 * per_frame / RATE)) * per_frame
    one = chirp()
    span = mic[base : base + int(MAX_DELAY_S * RATE) + len(one)].astype(np.float64)
    corr = _xcorr(span, one.astype(np.float64))
    if len(corr) == 0:
        return EchoReport(delay_ms=None, echo_db=None, erle_db=None, correlation=0.0)
    at = int(np.argmax(corr))
    window = span[at : at + len(one)]
    norm = math.sqrt(float(np.dot(window, window)) * float(np.dot(one, one.astype(np.float64))))
    peak = float(corr[at]) / norm if norm else 0.0
    at += base
    if peak < MIN_CORR:
        return EchoReport(delay_ms=None, echo_db=None, erle_db=None, correlation=peak)
    adc = frames[at // per_frame][0] + (at % per_frame) / RATE
    delay_ms = (adc - first_dac) * 1000
    lead = LEAD_MS * RATE // 1000
    far = np.zeros_like(mic)
    start = max(0, at - lead)
    far[start : start + len(played)] = played[: len(far) - start]
    cleaned = _cancel(mic, far)
    settled = slice(at + int(SETTLE_S * RATE), at + len(played))
    echo_db = 10 * math.log10(max(float(np.mean(mic[settled].astype(np.float64) ** 2)), 1e-9)
                              / float(np.mean(played.astype(np.float64) ** 2)))
    return EchoReport(delay_ms=delay_ms, echo_db=echo_db,
                      erle_db=erle_db(mic[settled], cleaned[settled]), correlation=peak)


def _xcorr(signal: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Cross-correlation of `pattern` at every start in `signal` (FFT)."""
    n = len(signal) + len(pattern)
    size = 1 << (n - 1).bit_length()
    spectrum = np.fft.rfft(signal, size) * np.conj(np.fft.rfft(pattern, size))
    return np.fft.irfft(spectrum, size)[: len(signal) - len(pattern) + 1]


def _cancel(mic: np.ndarray, far: np.ndarray) -> np.ndarray:
    canceller = EchoCanceller()
    frame = RATE // 50
    n = len(mic) // frame * frame
    out = b"".join(canceller.process(mic[i : i + frame].tobytes(), far[i : i + frame].tobytes())
                   for i in range(0, n, frame))
    return np.concatenate([np.frombuffer(out, np.int16), mic[n:]])


def _wait(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the sound devices did not play and record in time")
        time.sleep(0.01)
