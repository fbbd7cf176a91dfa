"""AudioRing against a reference model (a plain byte queue), plus a two-thread smoke test."""

from __future__ import annotations

import ctypes
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pivox.core.ring import AudioRing

ITEMS = ("item_a", "item_b", "item_c")


class RingModel(RuleBasedStateMachine):
    """Every operation is applied to the ring and to a byte-per-byte reference model."""

    @initialize(capacity=st.integers(1, 48))
    def start(self, capacity: int) -> None:
        self.ring = AudioRing(capacity)
        self.capacity = capacity
        # (item, generation of its accounting, byte), in play order; forget() starts a new
        # generation, and bytes queued under an older one play without being counted.
        self.queue: list[tuple[str, int, int]] = []
        self.generation = dict.fromkeys(ITEMS, 0)
        self.written: dict[str, int] = {}
        self.played: dict[str, int] = {}
        self.last_played: str | None = None
        self.expecting = False
        self.underruns = 0

    @rule(data=st.binary(max_size=100), item=st.sampled_from(ITEMS), view=st.booleans())
    def write(self, data: bytes, item: str, view: bool) -> None:
        accepted = self.ring.write(memoryview(data) if view else data, item)
        expected = min(len(data), self.capacity - len(self.queue))
        assert accepted == expected
        self.queue.extend((item, self.generation[item], byte) for byte in data[:expected])
        if expected:
            self.written[item] = self.written.get(item, 0) + expected
            self.expecting = True

    @rule(data=st.binary(max_size=100), item=st.sampled_from(ITEMS))
    def fill_and_commit(self, data: bytes, item: str) -> None:
        """What a C decoder does: fill the tail room in place, then commit it."""
        offset, room = self.ring.tail_room()
        free = self.capacity - len(self.queue)
        assert 0 <= offset < self.capacity and 0 <= room <= free and offset + room <= self.capacity
        assert room > 0 or free == 0
        with pytest.raises(ValueError, match="cannot commit"):
            self.ring.commit(room + 1, item)
        n = min(len(data), room)
        ctypes.memmove(self.ring.address + offset, data, n)
        self.ring.commit(n, item)
        self.queue.extend((item, self.generation[item], byte) for byte in data[:n])
        if n:
            self.written[item] = self.written.get(item, 0) + n
            self.expecting = True

    @rule(size=st.integers(0, 100), view=st.booleans())
    def read_into(self, size: int, view: bool) -> None:
        out = bytearray(b"\xaa" * size)
        copied = self.ring.read_into(memoryview(out) if view else out)
        taken, self.queue = self.queue[:size], self.queue[size:]
        assert copied == len(taken)
        assert out == bytes(byte for _, _, byte in taken) + bytes(size - len(taken))
        for item, generation, _ in taken:
            if generation == self.generation[item]:
                self.played[item] = self.played.get(item, 0) + 1
            self.last_played = item
        if len(taken) < size and self.expecting:
            self.underruns += 1
            self.expecting = False

    @rule()
    def clear(self) -> None:
        assert self.ring.clear() == len(self.queue)
        self.queue = []
        self.expecting = False

    @rule()
    def finish(self) -> None:
        self.ring.finish()
        self.expecting = False

    @rule(item=st.sampled_from(ITEMS))
    def forget(self, item: str) -> None:
        self.ring.forget(item)
        self.generation[item] += 1
        self.written.pop(item, None)
        self.played.pop(item, None)

    @invariant()
    def agrees(self) -> None:
        assert self.ring.capacity == self.capacity
        assert self.ring.available == len(self.queue)
        assert self.ring.free == self.capacity - len(self.queue)
        assert self.ring.underruns == self.underruns
        expected_current = self.queue[0][0] if self.queue else self.last_played
        assert self.ring.current_item == expected_current
        for item in ITEMS:
            assert self.ring.written(item) == self.written.get(item, 0)
            assert self.ring.played(item) == self.played.get(item, 0)


TestRingModel = RingModel.TestCase
TestRingModel.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)


def test_wraparound_keeps_order_and_item_boundaries() -> None:
    ring = AudioRing(10)
    assert ring.write(b"0123456", "a") == 7
    out = bytearray(5)
    assert ring.read_into(out) == 5 and out == b"01234"
    # 8 free: the write wraps past the end of the buffer, and only 8 of 9 bytes fit.
    assert ring.write(b"ABCDEFGHI", "b") == 8
    out = bytearray(12)
    assert ring.read_into(out) == 10
    assert out == b"56ABCDEFGH\0\0"
    assert (ring.written("a"), ring.played("a")) == (7, 7)
    assert (ring.written("b"), ring.played("b")) == (8, 8)
    assert ring.current_item == "b"


def test_cleared_bytes_are_written_but_never_played() -> None:
    ring = AudioRing(100)
    ring.write(b"x" * 60, "a")
    ring.read_into(bytearray(25))
    assert ring.clear() == 35
    assert (ring.written("a"), ring.played("a"), ring.available) == (60, 25, 0)
    assert ring.current_item == "a"  # the last item played, nothing is queued
    assert ring.read_into(bytearray(4)) == 0
    assert ring.underruns == 0  # clear() ended the expectation of audio


def test_underrun_counts_once_per_gap_and_not_after_finish() -> None:
    ring = AudioRing(100)
    assert ring.read_into(bytearray(10)) == 0
    assert ring.underruns == 0  # nothing was ever expected
    ring.write(b"x" * 15, "a")
    ring.read_into(bytearray(10))
    ring.read_into(bytearray(10))  # short: the network fell behind
    ring.read_into(bytearray(10))  # still starving: the same gap
    assert ring.underruns == 1
    ring.write(b"x" * 15, "a")
    ring.finish()  # AudioDone: the tail may run short without an underrun
    ring.read_into(bytearray(10))
    ring.read_into(bytearray(10))
    assert ring.underruns == 1


def test_accounting_is_bounded_but_never_drops_queued_items() -> None:
    ring = AudioRing(1000, max_items=4)
    for n in range(6):
        ring.write(b"ab", f"first{n}")
    # All six still have queued bytes: kept past the cap.
    assert [ring.written(f"first{n}") for n in range(6)] == [2] * 6
    ring.read_into(bytearray(12))
    for n in range(6):
        ring.write(b"ab", f"second{n}")
        ring.read_into(bytearray(2))
    assert [ring.written(f"first{n}") for n in range(6)] == [0] * 6
    assert [ring.played(f"second{n}") for n in range(6)] == [0, 0, 2, 2, 2, 2]


def test_forgotten_item_still_plays() -> None:
    ring = AudioRing(8)
    ring.write(b"abcd", "a")
    ring.forget("a")
    out = bytearray(4)
    assert ring.read_into(out) == 4 and out == b"abcd"
    assert (ring.written("a"), ring.played("a")) == (0, 0)


def test_memoryview_of_samples_is_written_as_bytes() -> None:
    ring = AudioRing(8)
    samples = memoryview(bytearray(b"\x01\x00\x02\x00")).cast("h")
    assert ring.write(samples, "a") == 4
    out = memoryview(bytearray(4)).cast("h")
    assert ring.read_into(out) == 4
    assert out.tolist() == [1, 2]


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_must_be_positive(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity must be positive"):
        AudioRing(capacity)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_threads_move_every_byte_in_order(seed: int) -> None:
    """A producer and a consumer thread: every byte arrives once, in order, per-item exact."""
    import random

    rng = random.Random(seed)
    stream = rng.randbytes(300_000)
    ring = AudioRing(4096)
    received = bytearray()
    cuts = sorted(rng.sample(range(1, len(stream)), 150))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]

    def produce() -> None:
        for index, chunk in enumerate(chunks):
            view = memoryview(chunk)
            while view:
                if index % 2:  # filled in place, as the fast path does
                    offset, room = ring.tail_room()
                    n = min(room, len(view))
                    ctypes.memmove(ring.address + offset, bytes(view[:n]), n)
                    ring.commit(n, f"item{index % 7}")
                    view = view[n:]
                else:
                    view = view[ring.write(view, f"item{index % 7}") :]

    def consume() -> None:
        out = bytearray(960)
        while len(received) < len(stream):
            received.extend(out[: ring.read_into(out)])

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert received == stream
    for n in range(7):
        item = f"item{n}"
        assert (
            ring.played(item)
            == ring.written(item)
            == sum(len(chunk) for index, chunk in enumerate(chunks) if index % 7 == n)
        )


def test_eviction_takes_the_item_that_ran_out_longest_ago_and_keeps_queued_ones() -> None:
    ring = AudioRing(1000, max_items=3)
    ring.write(b"aa", "a")
    ring.write(b"bb", "b")
    ring.read_into(bytearray(4))  # a ran out first, then b
    ring.write(b"cc", "c")
    ring.write(b"dd", "d")  # 4 items: a goes
    assert [ring.written(i) for i in "abcd"] == [0, 2, 2, 2]
    ring.write(b"ee", "e")  # c and d still queued: b goes
    assert [ring.written(i) for i in "bcde"] == [0, 2, 2, 2]
    ring.write(b"c2", "c")  # more of c, queued last
    ring.clear()  # what clear drops runs out in queue order: d, e, then c (its last bytes)
    ring.write(b"ff", "f")
    assert [ring.written(i) for i in "cdef"] == [4, 0, 2, 2]


def test_accounting_of_thousands_of_items_stays_bounded_and_exact() -> None:
    ring = AudioRing(4096, max_items=8)
    for n in range(20_000):
        assert ring.write(b"xy", f"item{n}") == 2
        if n % 3 == 2:
            ring.read_into(bytearray(6))
    assert len(ring._items) <= 8  # the bound, whatever ids came
    assert ring.written("item19999") == 2 and ring.written("item0") == 0
