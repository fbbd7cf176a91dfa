"""Reply audio of the local server: ramp positions, tones, speech, resampling."""

from __future__ import annotations

import shutil
from array import array

import pytest

from pivox.server.voice import RAMP_STEP, ramp, ramp_position, reply_audio, resample, tones


def samples(pcm: bytes) -> array[int]:
    out = array("h")
    out.frombytes(pcm)
    return out


def test_ramp_encodes_each_position() -> None:
    pcm = samples(ramp(24000))
    assert len(pcm) == 24000
    for index in (0, 7, 8, 12345, 23999):
        assert ramp_position(pcm[index]) <= index < ramp_position(pcm[index]) + RAMP_STEP
    assert ramp_position(pcm[-1]) == 23992


def test_reply_lengths_follow_reply_ms() -> None:
    assert len(reply_audio("ramp", "x", 250)) == 6000 * 2
    assert len(reply_audio("tones", "x", 1500)) == 36000 * 2
    assert len(tones(None)) > 0
    assert max(samples(tones(300))) > 4000  # audible


def test_resample_keeps_duration_and_shape() -> None:
    source = array("h", [0, 1000, 2000, 3000] * 2205)  # 8820 samples at 22050 Hz
    out = samples(resample(source.tobytes(), 22050, 24000))
    assert len(out) == 9600
    assert out[0] == 0 and max(out) <= 3000 and min(out) >= 0
    assert resample(source.tobytes(), 24000, 24000) == source.tobytes()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_speech_is_spoken_text() -> None:
    pcm = samples(reply_audio("speech", "I heard 2.4 seconds of audio"))
    assert 24000 < len(pcm) < 24000 * 5  # one to five seconds
    assert max(abs(s) for s in pcm) > 3000
