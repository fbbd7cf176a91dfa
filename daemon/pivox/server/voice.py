"""Reply audio of the local server: PCM16 mono 24 kHz, little-endian.

Three kinds: "speech" (espeak-ng via `espeak-ng --stdout`, resampled linearly to 24 kHz;
the tones when espeak-ng is missing or fails), "tones" (a short melody) and "ramp", where
sample `i` of a reply has the value `min(i // RAMP_STEP, 32767)`, so a recording of the
speaker tells exactly how much of the reply was played: `ramp_position(value)` is the index
of the first sample with that value (exact to RAMP_STEP samples, 1/3 ms; saturates after
RAMP_STEP * 32767 samples, about 10.9 s).
"""

from __future__ import annotations

import functools
import io
import logging
import math
import shutil
import subprocess
import sys
import wave
from array import array

SAMPLE_RATE = 24000
RAMP_STEP = 8
RAMP_MS = 1000
NOTE_MS = 180
MELODY_HZ = (523.25, 659.25, 783.99, 1046.5)
TONE_AMPLITUDE = 8000
REPLY_KINDS = ("speech", "tones", "ramp")

log = logging.getLogger("pivox.server.voice")


def reply_audio(kind: str, text: str, reply_ms: int | None = None) -> bytes:
    """The PCM16 of one reply; `reply_ms` fixes the length of ramp and tones replies."""
    if kind == "ramp":
        return ramp(_samples(reply_ms if reply_ms is not None else RAMP_MS))
    if kind == "speech":
        spoken = speech(text)
        if spoken is not None:
            return spoken
    return tones(reply_ms)


def ramp(n_samples: int) -> bytes:
    """`n_samples` of the position-encoding ramp."""
    return _to_bytes(array("h", (min(i // RAMP_STEP, 32767) for i in range(n_samples))))


def ramp_position(sample_value: int) -> int:
    """Index in the reply of the first ramp sample with this value."""
    return sample_value * RAMP_STEP


def tones(reply_ms: int | None = None) -> bytes:
    """A melody of short notes with faded edges, cycled or cut to `reply_ms` if given."""
    note = _samples(NOTE_MS)
    fade = note // 10
    samples = array("h")
    for hz in MELODY_HZ:
        for i in range(note):
            envelope = min(1.0, i / fade, (note - 1 - i) / fade)
            phase = 2 * math.pi * hz * i / SAMPLE_RATE
            samples.append(round(TONE_AMPLITUDE * envelope * math.sin(phase)))
    if reply_ms is not None:
        wanted = _samples(reply_ms)
        samples = (samples * (wanted // len(samples) + 1))[:wanted]
    return _to_bytes(samples)


@functools.lru_cache(maxsize=64)
def speech(text: str, voice: str = "", words_per_minute: int = 0) -> bytes | None:
    """`text` spoken by espeak-ng at 24 kHz, or None when espeak-ng is missing or fails;
    `voice` (e.g. "en-us+m3") and `words_per_minute` default to espeak-ng's own."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        return None
    options = (["-v", voice] if voice else []) + (
        ["-s", str(words_per_minute)] if words_per_minute else [])
    try:
        wav = subprocess.run(
            [binary, *options, "--stdout", text], capture_output=True, check=True, timeout=20
        ).stdout
        with wave.open(io.BytesIO(wav)) as reader:
            rate, width, channels = (
                reader.getframerate(), reader.getsampwidth(), reader.getnchannels()
            )
            # espeak-ng writes a streaming header with a bogus length: read to the end.
            frames = reader.readframes(reader.getnframes())
    except (OSError, subprocess.SubprocessError, wave.Error, EOFError) as exc:
        log.warning("espeak-ng failed, replying with tones: %s", exc)
        return None
    if width != 2 or channels != 1:
        log.warning("espeak-ng gave %d-byte %d-channel audio, replying with tones", width, channels)
        return None
    return resample(frames, rate, SAMPLE_RATE)


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Linear interpolation of PCM16 mono from one rate to another."""
    source = array("h")
    source.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        source.byteswap()
    if from_rate == to_rate or len(source) < 2:
        return _to_bytes(source)
    n_out = len(source) * to_rate // from_rate
    step = from_rate / to_rate
    last = len(source) - 1
    out = array("h", bytes(2 * n_out))
    for j in range(n_out):
        x = j * step
        i = min(int(x), last - 1)
        frac = x - i
        out[j] = round(source[i] + (source[i + 1] - source[i]) * min(frac, 1.0))
    return _to_bytes(out)


def _samples(ms: int) -> int:
    return SAMPLE_RATE * ms // 1000


def _to_bytes(samples: array[int]) -> bytes:
    if sys.byteorder == "big":
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()
