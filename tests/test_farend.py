"""FarEnd pairs reference bytes with mic frames by counters: one frame in, one frame out."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivox.farend import FarEnd

FRAME = 960


def frames(n: int, start: int = 0) -> list[bytes]:
    return [bytes([(start + i) % 251 + 1]) * FRAME for i in range(n)]


def test_steady_streams_pair_frame_for_frame_at_a_fixed_offset() -> None:
    far = FarEnd(48_000, max_lag=7200, target_lag=1920)
    sent = frames(50)
    far.write(sent[0])
    far.write(sent[1])  # the speaker runs two periods ahead
    got = []
    for i in range(2, 50):
        far.write(sent[i])
        got.append(far.take(FRAME))
    assert got == sent[:48]
    assert far.level == 2 * FRAME and far.padded == far.skipped == 0


def test_a_late_speaker_is_padded_once_and_the_level_rises_to_absorb_it() -> None:
    far = FarEnd(48_000, max_lag=7200, target_lag=1920)
    sent = frames(4)
    far.write(sent[0])
    assert far.take(FRAME) == sent[0]
    assert far.take(FRAME) == bytes(FRAME)  # the speaker's callback came late
    far.write(sent[1])
    far.write(sent[2])  # ... and then twice
    assert far.take(FRAME) == sent[1]
    far.write(sent[3])
    assert far.take(FRAME) == sent[2]  # one frame of slack now: the same jitter pads no more
    assert far.padded == FRAME and far.level == FRAME


def test_a_burst_past_max_lag_is_skipped_down_to_target() -> None:
    far = FarEnd(48_000, max_lag=4 * FRAME, target_lag=FRAME)
    sent = frames(8)
    for frame in sent:
        far.write(frame)
    assert far.take(FRAME) == sent[6]  # keeps target_lag (one frame) behind the newest
    assert far.skipped == 6 * FRAME and far.level == FRAME


def test_unwrite_takes_back_what_was_never_heard_but_not_what_was_taken() -> None:
    far = FarEnd(48_000, max_lag=7200, target_lag=1920)
    sent = frames(3)
    for frame in sent:
        far.write(frame)
    assert far.take(FRAME) == sent[0]
    far.unwrite(5 * FRAME)
    assert far.level == 0
    far.write(sent[0])
    assert far.take(FRAME) == sent[0]


def test_partial_frame_is_real_bytes_then_zeros() -> None:
    far = FarEnd(4800, max_lag=2400, target_lag=960)
    far.write(b"\x01" * 100)
    assert far.take(FRAME) == b"\x01" * 100 + bytes(FRAME - 100)


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="target_lag"):
        FarEnd(100, max_lag=200, target_lag=50)


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 700)), max_size=60))
def test_never_loses_order_or_exceeds_capacity(steps: list[tuple[bool, int]]) -> None:
    """Against a model: bytes come out in the order written, skips drop the oldest, pads are
    zeros, and the level never exceeds capacity."""
    far = FarEnd(2000, max_lag=1500, target_lag=500)
    counter = 0
    written: list[int] = []  # byte values in write order, 1..255
    taken: list[int] = []
    for is_write, n in steps:
        if is_write:
            chunk = bytes((counter + i) % 255 + 1 for i in range(n))
            counter += n
            far.write(chunk)
            written.extend(chunk)
        else:
            taken.extend(far.take(n))
        assert 0 <= far.level <= 2000
    real = [b for b in taken if b]
    it = iter(written)
    assert all(b in it for b in real)  # a subsequence of what was written, in order
    assert len(taken) - len(real) == far.padded


def test_speaker_and_mic_threads() -> None:
    far = FarEnd(48_000, max_lag=9600, target_lag=1920)
    sent = frames(2000)
    got: list[bytes] = []

    def speaker() -> None:
        for frame in sent:
            far.write(frame)

    thread = threading.Thread(target=speaker)
    thread.start()
    while thread.is_alive() or far.level:
        got.append(far.take(FRAME))
    thread.join()
    real = [frame for frame in got if any(frame)]
    assert all(len(f) == FRAME for f in got)
    it = iter(sent)
    assert all(any(f == s for s in it) for f in real if f == f[:1] * FRAME)
