"""EchoCanceller on arrays: a synthetic room (espeak-ng speech, delayed and attenuated echo
with reflections) loses its echo; the near-end talker passes, alone and over the echo."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from pivox.audio.aec import QUIET_MS, EchoCanceller, MissingDependency, erle_db, load_webrtc
from pivox.server.voice import speech

RATE = 24000
FRAME = RATE // 50  # 20 ms, the daemon's mic frame
APM_DELAY = 223
"""Samples WebRTC's band-split filters delay the output at 24 kHz (measured)."""


@pytest.fixture(scope="module")
def far_speech() -> np.ndarray:
    pcm = speech("The weather today is sunny with a light breeze from the west. Tomorrow "
                 "brings clouds and some rain in the afternoon, and the weekend looks warm.")
    assert pcm is not None, "espeak-ng is needed (apt-get install espeak-ng)"
    return np.frombuffer(pcm, np.int16)


@pytest.fixture(scope="module")
def near_speech() -> np.ndarray:
    pcm = speech("Stop. What time is it in Tokyo right now?")
    assert pcm is not None
    return np.frombuffer(pcm, np.int16)


def room(far: np.ndarray, delay_ms: int, gain_db: float) -> np.ndarray:
    """What the mic hears of `far`: a direct path after `delay_ms` and two reflections."""
    d = delay_ms * RATE // 1000
    h = np.zeros(d + 481)
    h[d], h[d + 120], h[d + 480] = 1.0, 0.35, -0.2
    echo = np.convolve(far.astype(np.float64), h)[: len(far)] * 10 ** (gain_db / 20)
    noise = np.random.default_rng(1).normal(0, 3, len(far))  # about -80 dBFS
    return echo + noise


def to_pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def cancel(canceller: EchoCanceller, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
    """Run whole 20 ms frames through `canceller`, as the daemon does."""
    n = len(mic) // FRAME * FRAME
    out = b"".join(canceller.process(mic[i : i + FRAME].tobytes(), far[i : i + FRAME].tobytes())
                   for i in range(0, n, FRAME))
    return np.frombuffer(out, np.int16)


def level_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-9))


@pytest.mark.parametrize("delay_ms", [30, 150])
@pytest.mark.parametrize("gain_db", [-6, 0])
def test_echo_of_speech_is_removed(far_speech: np.ndarray, delay_ms: int, gain_db: float) -> None:
    """After 2 s to converge, the echo is at least 35 dB down (measured 42-46 dB; 30-34 dB in
    the worst second)."""
    far = np.concatenate([far_speech, far_speech])
    mic = to_pcm(room(far, delay_ms, gain_db))
    out = cancel(EchoCanceller(RATE), mic, far)
    settled = slice(2 * RATE, len(out) - RATE)
    assert erle_db(mic[settled], out[settled]) >= 35
    for second in range(2, len(out) // RATE - 1):  # and in every second after, not on average
        part = slice(second * RATE, (second + 1) * RATE)
        if level_db(mic[part]) > 40:  # a second with echo in it
            assert erle_db(mic[part], out[part]) >= 25, f"second {second}"


def test_before_anything_played_the_mic_passes_bit_for_bit(near_speech: np.ndarray) -> None:
    """Nothing has played: no echo to cancel, AEC3 is not called."""
    canceller = EchoCanceller(RATE)
    out = cancel(canceller, near_speech, np.zeros_like(near_speech))
    assert np.array_equal(out, near_speech[: len(out)])
    assert canceller.bypassed == len(out) // FRAME


def test_after_a_reply_aec3_runs_through_a_pause_and_sleeps_after_quiet_ms(
        far_speech: np.ndarray, near_speech: np.ndarray) -> None:
    """Between the turns of a conversation the canceller keeps AEC3 running (the talker is
    only delayed by its filters); after QUIET_MS of silent far end the mic passes untouched."""
    canceller = EchoCanceller(RATE)
    cancel(canceller, to_pcm(room(far_speech, 30, -6)), far_speech)
    quiet = RATE * QUIET_MS // 1000
    mic = np.tile(near_speech, 1 + (quiet + 2 * RATE) // len(near_speech))[: quiet + 2 * RATE]
    out = cancel(canceller, mic, np.zeros_like(mic))
    kept = out[APM_DELAY:quiet]
    talker = mic[: len(kept)]
    assert abs(level_db(kept) - level_db(talker)) < 1.0
    corr = np.dot(kept.astype(float), talker) / np.sqrt(np.dot(kept.astype(float), kept)
                                                        * np.dot(talker.astype(float), talker))
    assert corr > 0.95
    assert np.array_equal(out[quiet:], mic[quiet : len(out)])
    assert canceller.bypassed >= (len(out) - quiet) // FRAME  # the reply ends in silence too


def test_with_noise_suppression_nothing_is_bypassed(near_speech: np.ndarray) -> None:
    """Noise suppression runs in AEC3's pass: a silent far end does not skip it."""
    mic = np.tile(near_speech, 1 + 2 * RATE // len(near_speech))[: 2 * RATE]
    canceller = EchoCanceller(RATE, noise_suppression=True)
    out = cancel(canceller, mic, np.zeros_like(mic))
    assert canceller.bypassed == 0 and not np.array_equal(out[RATE:], mic[RATE : len(out)])


@pytest.mark.parametrize("delay_ms", [30, 150])
def test_the_first_reply_after_a_long_silence_is_cancelled(
        far_speech: np.ndarray, delay_ms: int) -> None:
    """Converged, then 60 s of silent far end (bypassed), then a reply: its echo is as far
    down from its first second as with AEC3 fed all along (>= 30 dB; measured 38-40)."""
    canceller = EchoCanceller(RATE)
    cancel(canceller, to_pcm(room(far_speech, delay_ms, -6)), far_speech)
    quiet = np.zeros(60 * RATE, np.int16)
    cancel(canceller, to_pcm(room(quiet, delay_ms, -6)), quiet)
    assert canceller.bypassed >= (59 - QUIET_MS // 1000) * 50
    mic = to_pcm(room(far_speech, delay_ms, -6))
    out = cancel(canceller, mic, far_speech)
    first = slice(APM_DELAY, RATE)
    assert erle_db(mic[: RATE - APM_DELAY], out[first]) >= 30


@pytest.mark.parametrize("noise_suppression", [False, True], ids=["aec", "aec+ns"])
def test_talker_over_the_echo_passes(far_speech: np.ndarray, near_speech: np.ndarray,
                                     noise_suppression: bool) -> None:
    """Double talk (talker 6 dB under the echo): the talker stays within 8 dB of its level
    (measured -5 dB), while the echo alone around it is 30 dB down."""
    far = np.concatenate([far_speech, far_speech])
    echo = room(far, 30, 0)
    start = 5 * RATE
    talk = np.zeros(len(far))
    talk[start : start + len(near_speech)] = near_speech * 0.5
    mic = to_pcm(echo + talk)
    out = cancel(EchoCanceller(RATE, noise_suppression=noise_suppression), mic, far)
    during = slice(start + APM_DELAY, start + len(near_speech) + APM_DELAY)
    assert level_db(out[during]) > level_db(talk[during.start - APM_DELAY :
                                                 during.stop - APM_DELAY]) - 8
    echo_only = slice(3 * RATE, start)
    assert erle_db(mic[echo_only], out[echo_only]) >= 30


def test_frames_must_be_whole_blocks_of_equal_length() -> None:
    canceller = EchoCanceller(RATE)
    with pytest.raises(ValueError, match="multiples of 240"):
        canceller.process(bytes(2 * 250), bytes(2 * 250))
    with pytest.raises(ValueError, match="equal"):
        canceller.process(bytes(960), bytes(480))
    with pytest.raises(ValueError, match="10 ms"):
        EchoCanceller(22050)


def test_erle_of_silence_and_of_halving() -> None:
    x = to_pcm(np.full(480, 1000.0))
    assert erle_db(x, x // 2) == pytest.approx(6.02, abs=0.01)
    assert erle_db(x.tobytes(), bytes(960)) == float("inf")


def test_missing_library_names_package_and_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pywebrtc_audio", None)  # import now raises ImportError
    with pytest.raises(MissingDependency) as caught:
        load_webrtc()
    assert caught.value.package == "pywebrtc-audio"
    assert "pip install pywebrtc-audio" in str(caught.value)
