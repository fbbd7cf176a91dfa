"""Local wake word: 24 kHz mic frames in, a yes/no per frame out (microWakeWord models).

`WakeWordDetector` resamples the mic's 24 kHz PCM16 to the 16 kHz the model needs (soxr,
streaming), computes the TFLite Micro frontend features (pymicro-features) once and runs up
to two microWakeWord models on them (`pymicro-wakeword`): built-in ones, or any model's
`.json` by path with its `.tflite` beside it. A plain object: no threads, no clock. After a
detection it starts over, so one utterance of the wake word is one detection; `fired` and
one log line say which model fired.

The libraries are the `wake` extra (install.sh chooses it on arm64, amd64 and armhf; on
armhf pymicro-features builds from source). Where they are missing or do not load,
`WakeWordDetector` raises `WakeWordUnavailable`, whose message names the remedy.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import math
import platform
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivox.config import MAX_WAKE_WORDS
from pivox.config import WAKE_WORDS as MODELS
from pivox.core.errors import ConfigError, PivoxError

__all__ = [
    "MODELS", "WakeModel", "WakeWordDetector", "WakeWordUnavailable", "earcon", "load_model",
    "unavailable_reason", "wake_gate",
]

log = logging.getLogger("pivox.wake")


MIC_RATE = 24000
MODEL_RATE = 16000
CHUNK_BYTES = MODEL_RATE // 100 * 2
"""What the features frontend takes at a time: 10 ms of 16 kHz PCM16."""
EARCON_NOTES_HZ = (880.0, 1318.5)
EARCON_NOTE_MS = 70
EARCON_AMPLITUDE = 6000
FEATURES = 40
"""Audio features a step (the TFLite Micro frontend's mel bins) every microWakeWord takes."""
FEATURE_STEP_MS = 10
MAX_WINDOW = 100
STIR_PROBABILITY = 0.05
"""A model's probability above which the detector is `stirring`: measured on the corpus, it
is passed 200-400 ms before a detection, in 7 % of other speech's frames, never in noise."""
MAX_MODEL_JSON_BYTES = 64 * 1024
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
    except ImportError as exc:
        return (
            f"the local wake word is not installed ({exc}): sudo ./install.sh --extras wake "
            "(or pip install 'pivox[wake]'), or set session.mode = \"push_to_talk\""
        )
    except Exception as exc:  # OSError from a library built for another CPU
        return (
            f"the local wake word cannot run on this {userland()} ({exc}); "
            "use 64-bit Raspberry Pi OS, or set session.mode = \"push_to_talk\""
        )
    return None


def userland() -> str:
    """The machine as the wake word's libraries see it: the interpreter's pointer size decides
    (a 32-bit Raspberry Pi OS on a Pi 4/5 runs a 64-bit aarch64 kernel)."""
    return f"{struct.calcsize('P') * 8}-bit userland ({platform.machine()} kernel)"


@dataclass(frozen=True, slots=True, kw_only=True)
class WakeModel:
    """What a model file says of itself (what `pivox check` reports)."""

    name: str
    phrase: str
    languages: tuple[str, ...]
    cutoff: float
    window: int

    def __str__(self) -> str:
        langs = ", ".join(self.languages) or "languages not given"
        return (f"{self.name}: \"{self.phrase}\" ({langs}), cutoff {self.cutoff:.2f}, "
                f"window {self.window}")


def model_json(entry: str) -> Path:
    """The `.json` of a wake word entry: a built-in model's, or the path given."""
    if entry in MODELS:
        import pymicro_wakeword

        return Path(pymicro_wakeword.__file__).parent / "models" / f"{entry}.json"
    return Path(entry).expanduser()


def _refuse(path: Path, why: str) -> ConfigError:
    return ConfigError(f"wake word model {why}", path=str(path), key="session.wake_word")


def _read_model_json(path: Path) -> dict[str, Any]:
    """The model's JSON, checked for what the loader reads; ConfigError naming the file."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_MODEL_JSON_BYTES + 1)
    except OSError as exc:
        raise _refuse(path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        if len(data) > MAX_MODEL_JSON_BYTES:
            raise ValueError(f"longer than {MAX_MODEL_JSON_BYTES} bytes")
        doc = json.loads(data)
        micro = doc["micro"]
        model = doc["model"]
        if not (isinstance(model, str) and model.endswith(".tflite") and "/" not in model
                and isinstance(doc["wake_word"], str) and 0 < micro["probability_cutoff"] < 1
                and isinstance(micro["sliding_window_size"], int)
                and 0 < micro["sliding_window_size"] <= MAX_WINDOW
                and micro.get("feature_step_size", FEATURE_STEP_MS) == FEATURE_STEP_MS):
            raise ValueError("unexpected values")
    except (ValueError, KeyError, TypeError) as exc:
        raise _refuse(path, "is not a microWakeWord model description (JSON with wake_word, "
                      "model = a .tflite beside it, micro.probability_cutoff, "
                      f"micro.sliding_window_size, {FEATURE_STEP_MS} ms feature steps): "
                      f"{str(exc)[:80]}") from None
    return dict(doc)


def load_model(entry: str, cutoff: float = 0.0) -> tuple[Any, WakeModel]:
    """Load a built-in model or a `.json` path into a pymicro-wakeword detector.

    A broken file is a ConfigError naming it; the `.tflite` is checked by TensorFlow Lite's
    own verifier before the library builds an interpreter on it (given an invalid model,
    pymicro-wakeword crashes the process).
    """
    from pymicro_wakeword import MicroWakeWord

    path = model_json(entry)
    doc = _read_model_json(path)
    tflite = path.parent / doc["model"]
    if not tflite.is_file():
        raise _refuse(tflite, f"file missing (named by {path})")
    why = _tflite_fault(tflite)
    if why:
        raise _refuse(tflite, why)
    detector = MicroWakeWord.from_config(path)
    if cutoff:
        detector.probability_cutoff = cutoff
    return detector, WakeModel(
        name=entry if entry in MODELS else path.stem, phrase=doc["wake_word"][:64],
        languages=tuple(str(x)[:8] for x in doc.get("trained_languages", ())[:16]),
        cutoff=detector.probability_cutoff, window=detector.sliding_window_size)


def _tflite_fault(tflite: Path) -> str:
    """Why TensorFlow Lite cannot run `tflite` ("" when it can), asked of its C API with
    the library pymicro-wakeword uses (that of the built-in okay_nabu model)."""
    import ctypes

    lib = _tflite_library()
    model = lib.TfLiteModelCreateFromFile(str(tflite.resolve()).encode())
    if not model:
        return "is not a valid TensorFlow Lite model"
    interpreter = lib.TfLiteInterpreterCreate(model, None)
    try:
        if not interpreter or lib.TfLiteInterpreterAllocateTensors(interpreter) != 0:
            return "is a TensorFlow Lite model that cannot run"
        tensor = lib.TfLiteInterpreterGetInputTensor(interpreter, 0)
        if not tensor or lib.TfLiteTensorNumDims(tensor) != 3 or lib.TfLiteTensorDim(
                tensor, 2) != FEATURES:
            return f"does not take {FEATURES} audio features a step (not a microWakeWord model)"
        return ""
    finally:
        for name, handle in (("TfLiteInterpreterDelete", interpreter),
                             ("TfLiteModelDelete", model)):
            if handle:
                getattr(lib, name).argtypes = [ctypes.c_void_p]
                getattr(lib, name)(handle)


@functools.cache
def _tflite_library() -> Any:
    from pymicro_wakeword import MicroWakeWord, Model

    return MicroWakeWord.from_builtin(Model("okay_nabu")).lib


class WakeWordDetector:
    """Feed 24 kHz mono PCM16 frames to `process`; it returns True on the frame that
    completes a wake word (`fired` says which). `reset()` forgets all audio heard so far."""

    def __init__(self, model: str | Sequence[str] = "okay_nabu", cutoff: float = 0.0) -> None:
        """Load `model`: up to two entries, each a built-in name (one of `MODELS`) or the
        path of a microWakeWord `.json`; all listen at once. `cutoff` is the probability a
        detection must exceed (0: each model's own). Raise WakeWordUnavailable where the
        libraries do not run, ConfigError naming a missing or broken model file, ValueError
        for an unknown name or a cutoff outside 0..1."""
        entries = (model,) if isinstance(model, str) else tuple(model)
        if not 0 < len(entries) <= MAX_WAKE_WORDS:
            raise ValueError(f"expected 1 to {MAX_WAKE_WORDS} wake words, got {len(entries)}")
        for entry in entries:
            if entry not in MODELS and not entry.endswith(".json"):
                raise ValueError(f"wake word model must be one of {', '.join(MODELS)} or the "
                                 f"path of a .json, got {entry!r}")
        if not 0.0 <= cutoff < 1.0:
            raise ValueError(f"wake word cutoff must be in [0, 1), got {cutoff}")
        reason = unavailable_reason()
        if reason is not None:
            raise WakeWordUnavailable(reason)
        import numpy as np
        import soxr

        loaded = [load_model(entry, cutoff) for entry in entries]
        self._detectors = [detector for detector, _ in loaded]
        self.models: tuple[WakeModel, ...] = tuple(info for _, info in loaded)
        """What each model said of itself, in the order given."""
        self.model = self.models[0].name
        self.cutoff: float = self.models[0].cutoff
        """The probability a detection of the first model exceeds."""
        self.fired: str | None = None
        """The model that completed the last detection."""
        self._np = np
        self._soxr = soxr
        self._resampler: Any = None
        self._frontend = _Frontend()
        self._streams = [_Streaming(detector) for detector in self._detectors]
        self._fresh()

    def _fresh(self) -> None:
        self._resampler = self._soxr.ResampleStream(MIC_RATE, MODEL_RATE, 1, dtype="int16")
        self._frontend.restart()
        for stream in self._streams:
            stream.restart()

    def process(self, frame: bytes | bytearray | memoryview) -> bool:
        """Take one frame (any whole number of samples); True when a wake word just ended."""
        pcm = self._np.frombuffer(frame, dtype=self._np.int16)
        for row in self._frontend.rows(self._resampler.resample_chunk(pcm).tobytes()):
            for stream, info in zip(self._streams, self.models, strict=True):
                if stream.features(row):
                    self.fired = info.name
                    log.info("wake word %s heard", info.name,
                             extra={"PIVOX_EVENT": "wake_word", "WAKE_WORD": info.name})
                    self.reset()
                    return True
        return False

    @property
    def stirring(self) -> bool:
        """True while a model's sliding window holds a probability above STIR_PROBABILITY:
        a wake word may be under way (the capture path then hands over every frame)."""
        return any(stream.stirring for stream in self._streams)

    def reset(self) -> None:
        """Forget everything heard: the next detection needs the whole wake word again."""
        for detector in self._detectors:
            detector.reset()
        self._fresh()


class _Frontend:
    """16 kHz PCM16 in, 10 ms feature rows out (the TFLite Micro frontend of
    micro-features, fed whole 10 ms chunks); computed once for every model listening."""

    def __init__(self) -> None:
        from micro_features_cpp import create_frontend, process_samples

        self._create_frontend = create_frontend
        self._process_samples = process_samples
        self._audio = bytearray()
        self._frontend: Any = None

    def restart(self) -> None:
        """Forget all audio."""
        self._frontend = self._create_frontend()
        self._audio.clear()

    def rows(self, pcm16k: bytes) -> list[list[float]]:
        """The feature rows the audio so far completes, oldest first."""
        audio, out = self._audio, []
        audio += pcm16k
        at, end = 0, len(audio)
        while at + CHUNK_BYTES <= end:
            features, read = self._process_samples(
                self._frontend, bytes(audio[at : at + CHUNK_BYTES]))
            at += read * 2
            if features:
                out.append(features)
        del audio[:at]
        return out


class _Streaming:
    """pymicro-wakeword's streaming path (10 ms features, a model run per `stride` of them,
    the mean probability over its sliding window against the cutoff), the same arithmetic
    without its per-call allocations: buffers and ctypes pointers made once per model load,
    the window's mean taken exactly (statistics.mean) only within 1e-9 of the cutoff.
    tests/test_wake.py checks its verdicts against the library's, frame by frame."""

    def __init__(self, detector: Any) -> None:
        import numpy as np

        self._np = np
        self._detector = detector
        self._rows: list[list[float]] = []
        self._probabilities: deque[float] = deque(maxlen=detector.sliding_window_size)
        self.stirring = False
        """A probability in the window is above STIR_PROBABILITY."""

    def restart(self) -> None:
        """Forget all features (the model was reloaded): bind its new tensors."""
        np, d = self._np, self._detector
        self._rows.clear()
        self._probabilities.clear()
        self.stirring = False
        lib = d.lib
        width = lib.TfLiteTensorDim(d.input_tensor, 2)
        self._x = np.empty((1, d.stride, width), np.float64)
        self._q = np.empty((1, d.stride, width), d.input_dtype)
        self._q_ptr = self._q.ctypes.data_as(ctypes.c_void_p)
        size = lib.TfLiteTensorByteSize(d.output_tensor)
        self._out = np.empty(size // np.dtype(d.output_dtype).itemsize, d.output_dtype)
        self._out_ptr = self._out.ctypes.data_as(ctypes.c_void_p)
        self._out_size = size

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
        self.stirring = max(window) > STIR_PROBABILITY
        if len(window) < d.sliding_window_size:
            return False
        mean = math.fsum(window) / len(window)
        if abs(mean - d.probability_cutoff) < 1e-9:  # too close for a rounded mean
            import statistics  # rarely: its exact mean pulls in fractions and decimal

            mean = statistics.mean(window)
        return bool(mean > d.probability_cutoff)


def wake_gate(mode: str, model: str | Sequence[str],
              cutoff: float = 0.0) -> WakeWordDetector | None:
    """The mic path's wake-word slot for `mode`: a detector in wake_word mode, else None.

    Where the detector cannot run, logs one error line naming the remedy and returns None:
    the device then sends nothing until a button tap opens a turn. A missing or broken
    model file raises ConfigError.
    """
    if mode != "wake_word":
        return None
    try:
        detector = WakeWordDetector(model, cutoff)
    except WakeWordUnavailable as exc:
        log.error("%s; until then only a button tap opens a turn", exc,
                  extra={"PIVOX_EVENT": "wake_word_unavailable"})
        return None
    names = " and ".join(info.name for info in detector.models)
    log.info("listening locally for the wake word %s (cutoff %.2f)", names, detector.cutoff,
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
