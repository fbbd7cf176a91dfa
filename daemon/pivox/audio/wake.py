"""Local wake word: 24 kHz mic frames in, a yes/no per frame out (microWakeWord models).

`WakeWordDetector` resamples the mic's 24 kHz PCM16 to the 16 kHz the model needs (soxr,
streaming), computes the TFLite Micro frontend features (pymicro-features) and runs the
built-in model of `pymicro-wakeword`. A plain object: no threads, no clock. After a
detection it starts over, so one utterance of the wake word is one detection.

pymicro-features has no wheel for 32-bit ARM (armv7l, armv6l): there `WakeWordDetector`
raises `WakeWordUnavailable`, whose message names the remedy.
"""

from __future__ import annotations

import logging
import platform
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
EARCON_NOTES_HZ = (880.0, 1318.5)
EARCON_NOTE_MS = 70
EARCON_AMPLITUDE = 6000


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
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

        self.model = model
        self._np = np
        self._soxr = soxr
        self._features_cls = MicroWakeWordFeatures
        self._detector = MicroWakeWord.from_builtin(Model(model))
        if cutoff:
            self._detector.probability_cutoff = cutoff
        self.cutoff: float = self._detector.probability_cutoff
        """The probability a detection exceeds (the model's own unless one was given)."""
        self._resampler: Any = None
        self._features: Any = None
        self._fresh()

    def _fresh(self) -> None:
        self._resampler = self._soxr.ResampleStream(MIC_RATE, MODEL_RATE, 1, dtype="int16")
        self._features = self._features_cls()

    def process(self, frame: bytes | bytearray | memoryview) -> bool:
        """Take one frame (any whole number of samples); True when the wake word just ended."""
        pcm = self._np.frombuffer(frame, dtype=self._np.int16)
        resampled = self._resampler.resample_chunk(pcm)
        for features in self._features.process_streaming(resampled.tobytes()):
            if self._detector.process_streaming(features):
                self.reset()
                return True
        return False

    def reset(self) -> None:
        """Forget everything heard: the next detection needs the whole wake word again."""
        self._detector.reset()
        self._fresh()


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


def earcon() -> bytes:
    """The chime that says the wake word was heard: two rising 70 ms notes, 24 kHz PCM16."""
    import numpy as np

    n = MIC_RATE * EARCON_NOTE_MS // 1000
    t = np.arange(n) / MIC_RATE
    envelope = np.minimum(1.0, np.minimum(np.arange(n), n - 1 - np.arange(n)) / (n / 8))
    notes = [EARCON_AMPLITUDE * envelope * np.sin(2 * np.pi * hz * t) for hz in EARCON_NOTES_HZ]
    return np.concatenate(notes).astype("<i2").tobytes()
