"""FarEnd pairs reference bytes with mic frames by counters: one frame in, one frame out."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivox.core.farend import FarEnd

FRAME = 960


def frames(n: int, start: int = 0) -> list[bytes]:
    return [bytes([(start + i) % 251 + 1]) * FRAME for i in range(n)]


def test_steady_streams_pair_frame_for_frame_at_a_fixed_offset() -> None:
    far = FarEnd(48_000, target_lag=1920)
    sent = frames(50)
    far.write(sent[0])
    far.write(sent[1])  # the speaker runs two periods ahead
    got = []
    for i in range(2, 50):
        far.write(sent[i])
        got.append(far.take(FRAME))
    assert got == sent[:48]
    assert far.level == 2 * FRAME and far.skipped == 0


def test_a_frame_the_speaker_has_not_written_yet_waits_for_it() -> None:
    far = FarEnd(48_000, target_lag=1920)
    sent = frames(3)
    far.write(sent[0])
    assert far.take(FRAME) == sent[0]
    assert far.take(FRAME) is None  # the speaker's callback is late: ask again later
    far.write(sent[1][:500])
    assert far.take(FRAME) is None
    far.write(sent[1][500:])
    far.write(sent[2])
    assert [far.take(FRAME), far.take(FRAME)] == sent[1:]  # the pairing did not move


def test_a_level_that_stays_above_target_for_a_window_is_skipped_down_once() -> None:
    far = FarEnd(48_000, target_lag=FRAME, window=4)
    sent = frames(20)
    for frame in sent[:6]:
        far.write(frame)  # a burst: the reference runs 5 frames ahead
    got = []
    for frame in sent[6:14]:
        far.write(frame)
        got.append(far.take(FRAME))
    # the level left after each take of the first window never fell below 6 frames: the 4th
    # take skips 5 of them, leaving target_lag (1 frame) after it
    assert got[:4] == [*sent[0:3], sent[8]]
    assert got[4:] == sent[9:13]
    assert far.skipped == 5 * FRAME and far.level == FRAME


def test_unwrite_takes_back_what_was_never_heard_but_not_what_was_taken() -> None:
    far = FarEnd(48_000, target_lag=1920)
    sent = frames(3)
    for frame in sent:
        far.write(frame)
    assert far.take(FRAME) == sent[0]
    far.unwrite(5 * FRAME)
    assert far.level == 0
    far.write(sent[0])
    assert far.take(FRAME) == sent[0]


def test_when_full_the_oldest_give_way() -> None:
    far = FarEnd(2 * FRAME, target_lag=FRAME)
    sent = frames(3)
    for frame in sent:
        far.write(frame)
    assert far.take(FRAME) == sent[1] and far.skipped == FRAME


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="target_lag"):
        FarEnd(100, target_lag=200)


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 700)), max_size=60))
def test_never_loses_order_or_exceeds_capacity(steps: list[tuple[bool, int]]) -> None:
    """Against a model: bytes come out in the order written, skips drop the oldest, a take
    is all or nothing, and the level stays within 0..capacity."""
    far = FarEnd(2000, target_lag=500, window=3)
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
            level = far.level
            got = far.take(n)
            assert (got is None) == (level < n)
            taken.extend(got or b"")
        assert 0 <= far.level <= 2000
    it = iter(written)
    assert all(b in it for b in taken)  # a subsequence of what was written, in order


def test_speaker_and_mic_threads() -> None:
    far = FarEnd(48_000, target_lag=48_000)
    sent = frames(2000)
    got: list[bytes] = []

    def speaker() -> None:
        for frame in sent:
            far.write(frame)

    thread = threading.Thread(target=speaker)
    thread.start()
    while len(got) < len(sent):
        frame = far.take(FRAME)
        if frame is not None:
            got.append(frame)
        elif not thread.is_alive() and far.level < FRAME:
            break
    thread.join()
    it = iter(sent)
    assert got and all(any(f == s for s in it) for f in got)


def test_pass_over_keeps_the_pairing_and_drops_the_late_bytes() -> None:
    far = FarEnd(48_000, target_lag=1920)
    sent = frames(4)
    far.write(sent[0])
    assert far.take(FRAME) == sent[0]
    assert far.pass_over(FRAME) == bytes(FRAME)  # the speaker stalled: silence, position gone
    far.write(sent[1])  # ... its late frame 1 is dropped
    far.write(sent[2])
    assert far.take(FRAME) == sent[2] and far.late == FRAME


def test_reanchor_restarts_at_the_newest_byte_when_the_speaker_is_behind() -> None:
    far = FarEnd(48_000, target_lag=1920)
    for _ in range(5):
        far.pass_over(FRAME)  # a sink that has not started pulling
    sent = frames(2)
    far.write(sent[0])  # behind: late
    far.reanchor()
    far.write(sent[1])
    assert far.take(FRAME) == sent[1] and far.reanchored == 1
