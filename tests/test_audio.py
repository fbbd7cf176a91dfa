"""pivox.audio and pivox.resample on a real private PulseAudio (tests/pulse.py)."""

from __future__ import annotations

import math
import os
import time
from array import array
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from pivox.audio.soundcard import (
    DeviceInfo,
    Microphone,
    Speaker,
    format_devices,
    list_devices,
    select_device,
)
from pivox.core.errors import DeviceError
from pivox.core.farend import FarEnd
from pivox.core.resample import Resampler
from pivox.core.ring import AudioRing
from tests.pulse import PulseAudio

RATE = 24000
WAIT_S = 5.0  # generous upper bound for audio to go through; never a pass/fail timing


def pattern(samples: int, seed: int = 1) -> bytes:
    """PCM that never repeats within `samples` and has no zero run: easy to find exactly."""
    return array("h", [((i * 7919 + seed) % 30000) - 15000 or 1 for i in range(samples)]).tobytes()


def sine(freq: float, rate: int, seconds: float, amplitude: int = 12000) -> bytes:
    n = int(rate * seconds)
    return array(
        "h", [round(amplitude * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)]
    ).tobytes()


def rms(pcm: bytes, skip: float = 0.0) -> float:
    """Root mean square of the samples after the first `skip` fraction of them."""
    samples = array("h", pcm)
    samples = samples[int(len(samples) * skip) :]
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def frequency(pcm: bytes, rate: int) -> float:
    """Frequency from rising zero crossings of the non-silent part."""
    samples = [s for s in array("h", pcm)]
    loud = [i for i, s in enumerate(samples) if abs(s) > 2000]
    samples = samples[loud[0] : loud[-1]]
    rises = [i for i in range(1, len(samples)) if samples[i - 1] < 0 <= samples[i]]
    return (len(rises) - 1) * rate / (rises[-1] - rises[0])


def wait_for(condition: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def ring() -> AudioRing:
    return AudioRing(RATE * 2 * 5)


@pytest.fixture
def speaker(live_pulse: PulseAudio, ring: AudioRing) -> Iterator[Speaker]:
    spk = Speaker(ring)
    yield spk
    spk.close()


# --- devices -------------------------------------------------------------------------

FAKE = [
    DeviceInfo(
        index=0,
        name="USB Audio Device: hw:1,0",
        max_input_channels=1,
        max_output_channels=2,
        default_sample_rate=48000,
        host_api="ALSA",
    ),
    DeviceInfo(
        index=1,
        name="pulse",
        max_input_channels=32,
        max_output_channels=32,
        default_sample_rate=44100,
        host_api="ALSA",
    ),
    DeviceInfo(
        index=2,
        name="default",
        max_input_channels=32,
        max_output_channels=32,
        default_sample_rate=44100,
        host_api="ALSA",
        default_input=True,
        default_output=True,
    ),
    DeviceInfo(
        index=3,
        name="HDMI out",
        max_input_channels=0,
        max_output_channels=2,
        default_sample_rate=48000,
        host_api="ALSA",
    ),
]


@pytest.mark.parametrize(
    ("wanted", "kind", "index"),
    [
        ("", "output", 2),
        ("", "input", 2),
        ("usb", "input", 0),
        ("USB AUDIO", "output", 0),
        ("pulse", "output", 1),
        ("hdmi", "output", 3),
        (3, "output", 3),
        ("1", "input", 1),
    ],
)
def test_select_device(wanted: str | int, kind: str, index: int) -> None:
    assert select_device(FAKE, wanted, kind).index == index  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("wanted", "kind", "says"),
    [
        ("bluetooth", "output", "matches no output device"),
        ("hdmi", "input", "matches no input device"),
        (3, "input", "matches no input device"),
        (9, "output", "matches no output device"),
        ("u", "output", "matches several output devices"),
    ],
)
def test_select_device_miss_names_wanted_and_candidates(
    wanted: str | int, kind: str, says: str
) -> None:
    with pytest.raises(DeviceError) as caught:
        select_device(FAKE, wanted, kind)  # type: ignore[arg-type]
    assert caught.value.device == str(wanted)
    assert says.replace("devices", "device") in str(caught.value)
    assert "pulse" in str(caught.value) or "USB" in str(caught.value)


def test_select_default_when_nothing_exists() -> None:
    with pytest.raises(DeviceError) as caught:
        select_device([], "", "output")
    assert caught.value.device == "default output"


def test_format_devices_marks_selection() -> None:
    text = format_devices(FAKE, input_wanted="usb", output_wanted="hdmi").splitlines()
    assert text[1].endswith("USB Audio Device: hw:1,0  <in")
    assert text[4].endswith("HDMI out  <out")
    assert not text[2].endswith(("<in", "<out"))
    missing = format_devices(FAKE, output_wanted="nothing")
    assert "output: nothing: matches no output device" in missing


def test_portaudio_sees_pulse_devices(live_pulse: PulseAudio) -> None:
    devices = list_devices()
    by_name = {d.name: d for d in devices}
    assert {"pulse", "default"} <= set(by_name)
    for name in ("pulse", "default"):
        assert by_name[name].has("input") and by_name[name].has("output")
        assert by_name[name].host_api == "ALSA"
    assert select_device(devices, "", "output").name == "default"
    assert select_device(devices, "PULS", "input").name == "pulse"


# --- speaker -------------------------------------------------------------------------


def play_and_record(pulse: PulseAudio, speaker: Speaker, ring: AudioRing, pcm: bytes) -> bytes:
    with pulse.recording() as rec:
        speaker.start()
        assert wait_for(lambda: speaker.callbacks > 5)
        assert ring.write(pcm, "item") == len(pcm)
        assert wait_for(lambda: ring.available == 0)
        size = rec.size
        assert wait_for(lambda: rec.size > size + 24000)  # 0.5 s more after the last hand-off
        return rec.stop()


def test_speaker_plays_ring_bytes_exactly(
    live_pulse: PulseAudio, speaker: Speaker, ring: AudioRing
) -> None:
    pcm = pattern(RATE // 2)
    recorded = play_and_record(live_pulse, speaker, ring, pcm)
    at = recorded.find(pcm)
    assert at >= 0 and at % 2 == 0
    assert ring.played("item") == len(pcm)
    assert speaker.info is not None and speaker.device_rate == RATE
    assert speaker.alive(time.monotonic()) and speaker.error is None


def test_speaker_underrun_gives_silence_and_counts(
    live_pulse: PulseAudio, speaker: Speaker, ring: AudioRing
) -> None:
    pcm = pattern(RATE // 10, seed=5)
    recorded = play_and_record(live_pulse, speaker, ring, pcm)
    at = recorded.find(pcm)
    assert at >= 0
    after = recorded[at + len(pcm) : at + len(pcm) + 9600]
    assert after == bytes(len(after)) and len(after) == 9600
    assert ring.underruns == 1  # the item ran dry without finish(): one gap
    assert ring.played("item") == len(pcm)


@pytest.mark.parametrize("set_later", [False, True], ids=["at-open", "set_volume"])
def test_speaker_volume_scales_samples(live_pulse: PulseAudio, ring: AudioRing,
                                       set_later: bool) -> None:
    pcm = pattern(RATE // 4, seed=9)
    speaker = Speaker(ring, volume=100 if set_later else 50)
    if set_later:
        speaker.set_volume(50)  # what the set_volume tool does
    try:
        recorded = play_and_record(live_pulse, speaker, ring, pcm)
    finally:
        speaker.close()
    halved = array("h", [s * 16384 >> 15 for s in array("h", pcm)]).tobytes()
    assert recorded.find(halved) >= 0
    assert recorded.find(pcm) < 0


def test_speaker_records_what_it_played_into_the_far_end(
    live_pulse: PulseAudio, ring: AudioRing
) -> None:
    """The far-end reference is the PCM the sound card got: after volume, zeros around it."""
    far = FarEnd(10 * RATE * 2, target_lag=10 * RATE * 2)
    pcm = pattern(RATE // 4, seed=5)
    speaker = Speaker(ring, volume=50, far_end=far)
    try:
        recorded = play_and_record(live_pulse, speaker, ring, pcm)
    finally:
        speaker.close()
    reference = far.take(far.level) or b""
    halved = array("h", [s * 16384 >> 15 for s in array("h", pcm)]).tobytes()
    at = reference.find(halved)
    assert at >= 0 and recorded.find(halved) >= 0
    assert not any(reference[:at]) and not any(reference[at + len(halved):])
    assert len(reference) % 960 == 0  # whole periods


class RecordingFarEnd(FarEnd):
    """The real FarEnd, remembering what was taken back."""

    def __init__(self) -> None:
        super().__init__(10 * RATE * 2, target_lag=10 * RATE * 2)
        self.unwritten: list[int] = []

    def unwrite(self, n: int) -> None:
        self.unwritten.append(n)
        super().unwrite(n)


def test_flush_takes_back_the_far_end_it_never_played(
    live_pulse: PulseAudio, ring: AudioRing
) -> None:
    """All the sound card held goes back: the ring audio `flush` reports, and zeros after it."""
    far = RecordingFarEnd()
    speaker = Speaker(ring, far_end=far)
    try:
        speaker.start()
        assert wait_for(lambda: speaker.callbacks > 5)
        ring.write(pattern(RATE * 2, seed=6), "item")
        assert wait_for(lambda: ring.played("item") > RATE)
        unheard = speaker.flush()
        assert unheard > 0 and len(far.unwritten) == 1 and far.unwritten[0] >= unheard
    finally:
        speaker.close()


def test_speaker_start_stop_close_are_idempotent_and_reopen(
    live_pulse: PulseAudio, speaker: Speaker, ring: AudioRing
) -> None:
    assert not speaker.alive(time.monotonic())
    speaker.start()
    speaker.start()
    assert wait_for(lambda: speaker.callbacks > 3)
    assert speaker.alive(time.monotonic())
    speaker.stop()
    speaker.stop()
    assert not speaker.alive(time.monotonic())
    speaker.close()
    speaker.close()
    count = speaker.callbacks
    speaker.start()
    assert wait_for(lambda: speaker.callbacks > count + 3)
    assert speaker.alive(time.monotonic())
    assert not speaker.alive(time.monotonic() + 2.0)  # a stalled callback reads as dead


class NativeRateSpeaker(Speaker):
    """Pretends the device lacks 24 kHz so the resampling path runs."""

    def _supports(self, pa: object, info: DeviceInfo, rate: int) -> bool:
        return False


def test_speaker_resamples_when_device_lacks_24k(live_pulse: PulseAudio, ring: AudioRing) -> None:
    speaker = NativeRateSpeaker(ring)
    try:
        recorded = play_and_record(live_pulse, speaker, ring, sine(1000, RATE, 0.5))
    finally:
        speaker.close()
    assert speaker.device_rate == 44100  # ALSA's pulse device default rate
    assert frequency(recorded, RATE) == pytest.approx(1000, rel=0.01)


class BrokenServerSpeaker(Speaker):
    """Points libpulse at a dead server between PortAudio's start and the stream's open."""

    def _supports(self, pa: object, info: DeviceInfo, rate: int) -> bool:
        os.environ["PULSE_SERVER"] = "unix:/nonexistent/pulse/native"
        return True


def test_open_failure_names_device_and_portaudio_error(
    live_pulse: PulseAudio, ring: AudioRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_SERVER", os.environ["PULSE_SERVER"])
    speaker = BrokenServerSpeaker(ring, device="pulse")
    with pytest.raises(DeviceError) as caught:
        speaker.start()
    assert caught.value.device == "pulse"
    assert "cannot open output stream" in str(caught.value)
    assert "portaudio error -99" in str(caught.value)
    speaker.close()


def test_unknown_device_raises_device_error(live_pulse: PulseAudio, ring: AudioRing) -> None:
    speaker = Speaker(ring, device="no such card")
    with pytest.raises(DeviceError) as caught:
        speaker.start()
    assert caught.value.device == "no such card"
    assert "pulse" in str(caught.value)
    speaker.close()


# --- microphone ----------------------------------------------------------------------


def capture(pulse: PulseAudio, mic_class: type[Microphone], pcm: bytes) -> tuple[Microphone, bytes]:
    frames: list[bytes] = []
    mic = mic_class(on_frame=frames.append)
    try:
        mic.start()
        assert wait_for(lambda: len(frames) > 10)  # past the FIFO's stale audio
        assert pulse.mic is not None
        pulse.mic.play(pcm)
        assert pulse.mic.wait_played(WAIT_S)
        count = len(frames)
        assert wait_for(lambda: len(frames) > count + 10)
    finally:
        mic.close()
    assert {len(f) for f in frames} == {960}
    return mic, b"".join(frames)


def test_microphone_delivers_20ms_frames_with_what_was_played(live_pulse: PulseAudio) -> None:
    pcm = pattern(RATE // 2, seed=3)
    mic, captured = capture(live_pulse, Microphone, pcm)
    assert captured.find(pcm) >= 0
    assert mic.callbacks > 0 and mic.error is None
    assert not mic.alive(time.monotonic())  # closed


class NativeRateMicrophone(Microphone):
    """Pretends the device lacks 24 kHz so the resampling path runs."""

    def _supports(self, pa: object, info: DeviceInfo, rate: int) -> bool:
        return False


def test_microphone_resamples_when_device_lacks_24k(live_pulse: PulseAudio) -> None:
    mic, captured = capture(live_pulse, NativeRateMicrophone, sine(440, RATE, 0.6))
    assert mic.device_rate == 44100
    assert frequency(captured, RATE) == pytest.approx(440, rel=0.01)


def test_microphone_callback_error_is_reported(live_pulse: PulseAudio) -> None:
    def explode(frame: bytes) -> None:
        raise RuntimeError("boom")

    mic = Microphone(on_frame=explode)
    try:
        mic.start()
        assert wait_for(lambda: mic.error is not None)
        assert "boom" in (mic.error or "")
        assert not mic.alive(time.monotonic())
    finally:
        mic.close()


# --- resampler -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate_in", "rate_out"),
    [(48000, 24000), (44100, 24000), (16000, 24000), (24000, 44100), (24000, 48000)],
)
def test_resampler_keeps_frequency_and_length(rate_in: int, rate_out: int) -> None:
    pcm = sine(1000, rate_in, 1.0)
    resampler = Resampler(rate_in, rate_out)
    chunk = rate_in // 50 * 2
    out = b"".join(resampler.process(pcm[i : i + chunk]) for i in range(0, len(pcm), chunk))
    assert 0 <= rate_out - len(out) // 2 <= rate_out * 8 // 1000  # the filter holds back <= 8 ms
    assert frequency(out, rate_out) == pytest.approx(1000, rel=0.005)
    assert rms(out, skip=0.25) == pytest.approx(rms(pcm), rel=0.01)


def test_resampler_removes_what_the_new_rate_cannot_hold() -> None:
    """A 16 kHz tone taken from 48 to 24 kHz is filtered out, not folded back to 8 kHz."""
    pcm = sine(16000, 48000, 0.5)
    out = Resampler(48000, 24000).process(pcm)
    assert rms(out, skip=0.25) < rms(pcm) / 1000  # below -60 dB


def test_resampler_chunking_does_not_change_output() -> None:
    pcm = pattern(4410)
    whole = Resampler(44100, 24000).process(pcm)
    resampler = Resampler(44100, 24000)
    pieces = b"".join(resampler.process(pcm[i : i + 346]) for i in range(0, len(pcm), 346))
    common = min(len(whole), len(pieces))
    a, b = (np.frombuffer(pcm[:common], np.int16).astype(int) for pcm in (whole, pieces))
    diff = int(np.abs(a - b).max())
    assert common >= len(whole) - 2 * 20 and diff <= 2  # rounding only, never a shift


def test_resampler_same_rate_is_identity() -> None:
    pcm = pattern(1000)
    assert Resampler(24000, 24000).process(pcm) == pcm


def test_resampler_flush_gives_the_tail_and_starts_over() -> None:
    """Gemini's 16 kHz turns: what the filter held back comes out at the end of a turn."""
    pcm = sine(1000, 24000, 1.0)
    resampler = Resampler(24000, 16000)
    chunk = 480 * 2
    out = b"".join(resampler.process(pcm[i : i + chunk]) for i in range(0, len(pcm), chunk))
    out += resampler.flush()
    assert abs(len(out) // 2 - 16000) <= 2
    assert resampler.flush() == b""  # nothing held after a flush
    again = resampler.process(pcm[:chunk]) + resampler.flush()
    assert abs(len(again) // 2 - 320) <= 2
