"""Local wake word: 24 kHz mic frames in, a yes/no per frame out (microWakeWord models).

`WakeWordDetector` resamples the mic's 24 kHz PCM16 to the 16 kHz the model needs (soxr,
streaming), computes the TFLite Micro frontend features (pymicro-features) and runs the
built-in model of `pymicro-wakeword`. A plain object: no threads, no clock. After a
detection it starts over, so one utterance of the wake word is one detection.

pymicro-features has no wheel for 32-bit ARM (armv7l, armv6l): there `WakeWordDetector`
raises `WakeWordUnavailable`, whose message names the remedy.
"""

from __future__ import annotations

import ctypes
import logging
import math
import platform
from collections import deque
from typing import Any

from pivox.config import WAKE_WORDS as MODELS
from pivox.core.errors import PivoxError

__all__ = [
    "MODELS", "WakeWordDetector", "WakeWordUnavailable", "earcon", "unavailable_reason",
    "wake_gate",
]

log = logging.getLogger("pivox.wake")


MIC_RATE = 24000
MODEL_RATE = 16000
CHUNK_BYTES = MODEL_RATE // 100 * 2
"""What the features frontend takes at a time: 10 ms of 16 kHz PCM16."""
EARCON_NOTES_HZ = (880.0, 1318.5)
EARCON_NOTE_MS = 70
EARCON_AMPLITUDE = 6000
ANNOUNCEMENT_NOTES_HZ = (1318.5, 1046.5, 784.0)
ANNOUNCEMENT_NOTE_MS = 120


class WakeWordUnavailable(PivoxError):
    """The wake-word detector cannot run on this machine (the message says why and what to do)."""


def unavailable_reason() -> str | None:
    """None when the detector can run here, else one line naming the cause and the remedy."""
    try:
        import pymicro_features  # noqa: F401
        import pymicro_wakeword  # noqa: F401
        import soxr  # type: ignore[import-untyped]  # noqa: F401
    except Exception as exc:  # ImportError, or OSError from a library built for another CPU
        return (
            f"the local wake word cannot run on {platform.machine()} ({exc}); "
            "use 64-bit Raspberry Pi OS, or set session.mode = \"push_to_talk\""
        )
    return None


class WakeWordDetector:
    """Feed 24 kHz mono PCM16 frames to `process`; it returns True on the frame that
    completes the wake word. `reset()` forgets all audio heard so far."""

    def __init__(self, model: str = "okay_nabu", cutoff: float = 0.0) -> None:
        """Load the built-in `model` (one of `MODELS`); `cutoff` is the probability a
        detection must exceed (0: the model's own). Raise WakeWordUnavailable where the
        libraries do not run, ValueError for an unknown model or a cutoff outside 0..1."""
        if model not in MODELS:
            raise ValueError(f"wake word model must be one of {', '.join(MODELS)}, got {model!r}")
        if not 0.0 <= cutoff < 1.0:
            raise ValueError(f"wake word cutoff must be in [0, 1), got {cutoff}")
        reason = unavailable_reason()
        if reason is not None:
            raise WakeWordUnavailable(reason)
        import numpy as np
        import soxr
        from pymicro_wakeword import MicroWakeWord, Model

        self.model = model
        self._np = np
        self._soxr = soxr
        self._detector = MicroWakeWord.from_builtin(Model(model))
        if cutoff:
            self._detector.probability_cutoff = cutoff
        self.cutoff: float = self._detector.probability_cutoff
        """The probability a detection exceeds (the model's own unless one was given)."""
        self._resampler: Any = None
        self._stream = _Streaming(self._detector)
        self._fresh()

    def _fresh(self) -> None:
        self._resampler = self._soxr.ResampleStream(MIC_RATE, MODEL_RATE, 1, dtype="int16")
        self._stream.restart()

    def process(self, frame: bytes | bytearray | memoryview) -> bool:
        """Take one frame (any whole number of samples); True when the wake word just ended."""
        pcm = self._np.frombuffer(frame, dtype=self._np.int16)
        if self._stream.feed(self._resampler.resample_chunk(pcm).tobytes()):
            self.reset()
            return True
        return False

    def reset(self) -> None:
        """Forget everything heard: the next detection needs the whole wake word again."""
        self._detector.reset()
        self._fresh()


class _Streaming:
    """pymicro-wakeword's streaming path (10 ms features, a model run per `stride` of them,
    the mean probability over its sliding window against the cutoff), the same arithmetic
    without its per-call allocations: buffers and ctypes pointers made once per model load,
    the window's mean taken exactly (statistics.mean) only within 1e-9 of the cutoff.
    tests/test_wake.py checks its verdicts against the library's, frame by frame."""

    def __init__(self, detector: Any) -> None:
        import numpy as np
        from micro_features_cpp import create_frontend, process_samples

        self._np = np
        self._detector = detector
        self._create_frontend = create_frontend
        self._process_samples = process_samples
        self._audio = bytearray()
        self._rows: list[list[float]] = []
        self._probabilities: deque[float] = deque(maxlen=detector.sliding_window_size)
        self._frontend: Any = None

    def restart(self) -> None:
        """Forget all audio and features (the model was reloaded): bind its new tensors."""
        np, d = self._np, self._detector
        self._frontend = self._create_frontend()
        self._audio.clear()
        self._rows.clear()
        self._probabilities.clear()
        lib = d.lib
        width = lib.TfLiteTensorDim(d.input_tensor, 2)
        self._x = np.empty((1, d.stride, width), np.float64)
        self._q = np.empty((1, d.stride, width), d.input_dtype)
        self._q_ptr = self._q.ctypes.data_as(ctypes.c_void_p)
        size = lib.TfLiteTensorByteSize(d.output_tensor)
        self._out = np.empty(size // np.dtype(d.output_dtype).itemsize, d.output_dtype)
        self._out_ptr = self._out.ctypes.data_as(ctypes.c_void_p)
        self._out_size = size

    def feed(self, pcm16k: bytes) -> bool:
        """Take 16 kHz PCM16; True when the wake word completes in it (the rest is dropped)."""
        audio = self._audio
        audio += pcm16k
        at, end = 0, len(audio)
        while at + CHUNK_BYTES <= end:
            features, read = self._process_samples(
                self._frontend, bytes(audio[at : at + CHUNK_BYTES]))
            at += read * 2
            if features and self.features(features):
                return True
        del audio[:at]
        return False

    def features(self, row: list[float]) -> bool:
        """One 10 ms feature row; True when the window's mean probability exceeds the cutoff."""
        rows, d = self._rows, self._detector
        rows.append(row)
        if len(rows) < d.stride:
            return False
        np, x = self._np, self._x
        x[0] = rows
        rows.clear()
        np.divide(x, d.input_scale, out=x)
        np.add(x, d.input_zero_point, out=x)
        np.round(x, out=x)
        np.copyto(self._q, x, casting="unsafe")
        lib = d.lib
        lib.TfLiteTensorCopyFromBuffer(d.input_tensor, self._q_ptr, self._q.nbytes)
        lib.TfLiteInterpreterInvoke(d.interpreter)
        lib.TfLiteTensorCopyToBuffer(d.output_tensor, self._out_ptr, self._out_size)
        probability = ((self._out.astype(np.float32) - d.output_zero_point)
                       * d.output_scale).item()
        window = self._probabilities
        window.append(probability)
        if len(window) < d.sliding_window_size:
            return False
        mean = math.fsum(window) / len(window)
        if abs(mean - d.probability_cutoff) < 1e-9:  # too close for a rounded mean
            import statistics  # rarely: its exact mean pulls in fractions and decimal

            mean = statistics.mean(window)
        return bool(mean > d.probability_cutoff)


def wake_gate(mode: str, model: str, cutoff: float = 0.0) -> WakeWordDetector | None:
    """The mic path's wake-word slot for `mode`: a detector in wake_word mode, else None.

    Where the detector cannot run, logs one error line naming the remedy and returns None:
    the device then sends nothing until a button tap opens a turn.
    """
    if mode != "wake_word":
        return None
    try:
        detector = WakeWordDetector(model, cutoff)
    except WakeWordUnavailable as exc:
        log.error("%s; until then only a button tap opens a turn", exc,
                  extra={"PIVOX_EVENT": "wake_word_unavailable"})
        return None
    log.info("listening locally for the wake word %s (cutoff %.2f)", model, detector.cutoff,
             extra={"PIVOX_EVENT": "wake_word_ready"})
    return detector


def earcon(notes_hz: tuple[float, ...] = EARCON_NOTES_HZ, note_ms: int = EARCON_NOTE_MS) -> bytes:
    """The chime that says the wake word was heard: two rising 70 ms notes, 24 kHz PCM16."""
    import numpy as np

    n = MIC_RATE * note_ms // 1000
    t = np.arange(n) / MIC_RATE
    envelope = np.minimum(1.0, np.minimum(np.arange(n), n - 1 - np.arange(n)) / (n / 8))
    notes = [EARCON_AMPLITUDE * envelope * np.sin(2 * np.pi * hz * t) for hz in notes_hz]
    return np.concatenate(notes).astype("<i2").tobytes()


def announcement_chime() -> bytes:
    """The chime before an announcement: three falling 120 ms notes (unlike the wake earcon)."""
    return earcon(ANNOUNCEMENT_NOTES_HZ, ANNOUNCEMENT_NOTE_MS)
