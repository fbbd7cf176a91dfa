"""PreRoll keeps exactly the last N bytes pushed, in order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivox.core.preroll import PREROLL_BYTES, PreRoll

steps = st.lists(st.one_of(st.binary(max_size=40), st.none()), max_size=40)


@given(capacity=st.integers(1, 32), steps=steps)
def test_keeps_the_last_capacity_bytes(capacity: int, steps: list[bytes | None]) -> None:
    """A `None` step drains; the model is the whole history cut to its last `capacity` bytes."""
    preroll = PreRoll(capacity)
    history = b""
    for frame in steps:
        if frame is None:
            assert preroll.drain() == history[-capacity:]
            history = b""
        else:
            preroll.push(frame)
            history += frame
        assert len(preroll) == min(len(history), capacity)
    assert preroll.drain() == history[-capacity:]
    assert len(preroll) == 0


def test_default_is_300_ms_of_24_khz_pcm16() -> None:
    preroll = PreRoll()
    assert preroll.capacity == PREROLL_BYTES == 24_000 * 2 * 300 // 1000
    for n in range(20):
        preroll.push(bytes([n]) * 960)
    kept = preroll.drain()
    assert kept == b"".join(bytes([n]) * 960 for n in range(5, 20))


def test_accepts_a_memoryview_of_samples() -> None:
    preroll = PreRoll(4)
    preroll.push(memoryview(bytearray(b"\x01\x00\x02\x00\x03\x00")).cast("h"))
    assert preroll.drain() == b"\x02\x00\x03\x00"


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity must be positive"):
        PreRoll(0)
