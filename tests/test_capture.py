"""Capture: canceller, wake gate and pre-roll in one pipeline, driven with real parts."""

from __future__ import annotations

import numpy as np

from pivox.audio.aec import EchoCanceller, erle_db
from pivox.audio.capture import Capture
from pivox.core.preroll import PreRoll
from pivox.server.voice import speech

FRAME = 960


class CountingGate:
    """A wake gate that fires on its `fire_at`-th frame and remembers what it saw."""

    def __init__(self, fire_at: int) -> None:
        self.fire_at = fire_at
        self.seen: list[bytes] = []
        self.stirring = False

    def process(self, frame: bytes) -> bool:
        self.seen.append(frame)
        return len(self.seen) == self.fire_at


def test_without_canceller_frames_go_to_preroll_until_streaming() -> None:
    capture = Capture(PreRoll(3 * FRAME))
    frames = [bytes([i + 1]) * FRAME for i in range(5)]
    for frame in frames[:4]:
        assert capture.feed(frame, bytes(FRAME), streaming=False).append is None
    assert capture.feed(frames[4], bytes(FRAME), streaming=True).append == frames[4]
    assert capture.drain_preroll() == b"".join(frames[1:4])  # the last 3 before streaming


def test_gate_sees_every_cleaned_frame_and_its_verdict_comes_back() -> None:
    gate = CountingGate(fire_at=3)
    capture = Capture(PreRoll(FRAME), gate=gate)
    verdicts = [capture.feed(bytes([i]) * FRAME, bytes(FRAME), streaming=i > 3).woke
                for i in range(6)]
    assert verdicts == [False, False, True, False, False, False]
    assert gate.seen == [bytes([i]) * FRAME for i in range(6)]


def test_echo_is_gone_from_what_is_appended_and_from_the_preroll() -> None:
    pcm = speech("One two three four five six seven eight nine ten, and the weather is fine.")
    assert pcm is not None
    far = np.frombuffer(pcm, np.int16)
    delay = 30 * 24
    mic = np.zeros_like(far)
    mic[delay:] = far[:-delay] // 2  # the speaker, heard 30 ms later at -6 dB
    preroll_bytes = 24_000  # 500 ms
    capture = Capture(PreRoll(preroll_bytes), canceller=EchoCanceller())
    samples = FRAME // 2
    n = len(far) // samples
    appended = []
    for k in range(n):
        part = slice(k * samples, (k + 1) * samples)
        got = capture.feed(mic[part].tobytes(), far[part].tobytes(), streaming=k >= n - 50)
        if got.append is not None:
            appended.append(got.append)
    streamed = slice((n - 50) * samples, n * samples)
    assert erle_db(mic[streamed], b"".join(appended)) > 25
    kept = capture.drain_preroll()
    before = slice((n - 50) * samples - len(kept) // 2, (n - 50) * samples)
    assert len(kept) == preroll_bytes and erle_db(mic[before], kept) > 25


class Mic:
    """The machine's two answers the audio thread asks about."""

    def __init__(self, muted: bool = False, streaming: bool = False) -> None:
        self.muted, self.streaming = muted, streaming


def test_frames_per_hop_none_while_muted_one_while_streaming_or_stirring_else_four() -> None:
    gate = CountingGate(0)
    capture = Capture(PreRoll(FRAME), gate=gate)
    assert [capture.frames_per_hop(Mic(muted=True)), capture.frames_per_hop(Mic(streaming=True)),
            capture.frames_per_hop(Mic())] == [0, 1, 4]
    gate.stirring = True  # a wake word may be under way: each frame at once
    assert [capture.frames_per_hop(Mic(muted=True)), capture.frames_per_hop(Mic())] == [0, 1]
