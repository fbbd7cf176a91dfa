"""Benchmark: audio-delta frames to PCM, naive vs pivox's fast path vs full decoder vs the limit.

Run: .venv/bin/python bench/decode.py [--reps N]

Prints, per PCM payload size, the median per-event time of each path over N repetitions,
events/s, PCM MB/s, ratios against the naive path and the limit measured in the same run,
and tracemalloc counts per event (see `allocations`). Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import statistics
import time
import tracemalloc

import pybase64

from pivox.config import AudioSettings
from pivox.daemon import BYTES_PER_MS
from pivox.events import AudioDelta, ItemId, ResponseId
from pivox.protocol.fastpath import decode_into_ring, parse_audio_delta
from pivox.protocol.openai import decode_server_event, encode_server_event
from pivox.ring import AudioRing

SIZES = (960, 9_600, 48_000)
TARGET_SECONDS = 0.05  # per repetition and path
RING_BYTES = AudioSettings().ring_ms * BYTES_PER_MS  # the daemon's default speaker ring (10 s)
ALLOC_EVENTS = 500


def make_frame(size: int) -> bytes:
    """A GA audio delta of `size` PCM bytes, serialised the way the bundled server does."""
    delta = AudioDelta(
        event_id="event_CCZx7v9QyYtS3oPqW1a2b",
        response_id=ResponseId("resp_CCZx7uAbCdEfGhIjKlMnO"),
        item_id=ItemId("item_CCZx7uPqRsTuVwXyZ0123"),
        output_index=0,
        content_index=0,
        audio=os.urandom(size),
    )
    return encode_server_event(delta).encode()


class Paths:
    """The paths measured, each `step()` handles one frame; `reset()` runs between batches."""

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        chunk = parse_audio_delta(frame)
        assert chunk is not None, "the benchmark frame must take the fast path"
        self.span = chunk.b64
        self.size = chunk.size
        self.batch = RING_BYTES // self.size  # events between two resets
        self.ring = AudioRing(RING_BYTES)
        self.sink = bytearray()
        self.dst = memoryview(bytearray(self.size))
        self.drain = memoryview(bytearray(self.ring.capacity))

    def reset(self) -> None:
        self.ring.read_into(self.drain[: self.ring.available])
        self.sink.clear()

    def naive(self) -> object:
        obj = json.loads(self.frame.decode())
        self.sink += base64.b64decode(obj["delta"])
        return obj

    def fast(self) -> object:
        chunk = parse_audio_delta(self.frame)
        assert chunk is not None
        decode_into_ring(chunk, self.ring)
        return chunk

    def full(self) -> object:
        event = decode_server_event(self.frame)
        assert isinstance(event, AudioDelta)
        self.ring.write(event.audio, event.item_id)
        return event

    def limit(self) -> object:
        self.dst[:] = pybase64.b64decode(self.span, validate=True)
        return None

    def pybase64_only(self) -> object:
        return pybase64.b64decode(self.span, validate=True)

    def binascii_only(self) -> object:
        return binascii.a2b_base64(self.span)


ROWS: tuple[tuple[str, str], ...] = (
    ("naive", "bytes→str→json.loads→base64.b64decode→bytearray"),
    ("fast", "pivox fast path → AudioRing"),
    ("full", "pivox decode_server_event + ring.write"),
    ("limit", "limit: pybase64.b64decode(span) + memcpy"),
    ("pybase64_only", "pybase64.b64decode(span) alone"),
    ("binascii_only", "binascii.a2b_base64(span) alone"),
)


def time_path(paths: Paths, name: str, reps: int) -> float:
    """Median seconds per event over `reps` repetitions of about TARGET_SECONDS each.

    A repetition runs batches of `paths.batch` events; the resets between them are not timed.
    """
    step = getattr(paths, name)
    results = []
    for _ in range(reps):
        events, elapsed = 0, 0.0
        while elapsed < TARGET_SECONDS:
            paths.reset()
            start = time.perf_counter()
            for _ in range(paths.batch):
                step()
            elapsed += time.perf_counter() - start
            events += paths.batch
        results.append(elapsed / events)
    paths.reset()
    return statistics.median(results)


def allocations(paths: Paths, name: str) -> tuple[float, float]:
    """(blocks, peak bytes) per event, after warm-up, by tracemalloc.

    blocks: memory blocks still allocated per event when the caller keeps what each event
    returned (the parsed dict, the AudioChunk, the AudioDelta), counted from the difference
    of two snapshots' statistics over ALLOC_EVENTS events. CPython counts no allocation
    calls, so blocks freed within the call are not in it; `peak` shows them: the largest
    extra memory held at once while handling one event (the transient copies of the audio).
    """
    step = getattr(paths, name)
    for _ in range(20):
        step()
    paths.reset()
    kept: list[object] = []
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(ALLOC_EVENTS):
        kept.append(step())
        paths.reset()
    after = tracemalloc.take_snapshot()
    peaks = []
    for _ in range(20):
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        step()
        peaks.append(tracemalloc.get_traced_memory()[1] - current)
        paths.reset()
    tracemalloc.stop()
    kept_list_blocks = 1  # the list `kept` itself (its item array grows in place)
    diff = after.compare_to(before, "filename")
    blocks = sum(stat.count_diff for stat in diff) - kept_list_blocks
    return blocks / ALLOC_EVENTS, statistics.median(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="repetitions per path (median)")
    reps = parser.parse_args().reps
    print(f"pybase64 {pybase64.get_version()}; medians of {reps} repetitions")
    for size in SIZES:
        frame = make_frame(size)
        paths = Paths(frame)
        times = {name: time_path(paths, name, reps) for name, _ in ROWS}
        print(f"\nPCM {size} B per event (frame {len(frame)} B)")
        print(
            f"{'path':<50} {'µs/event':>9} {'events/s':>10} {'MB/s':>8} "
            f"{'vs naive':>9} {'vs limit':>9} {'blocks':>7} {'peak B':>8}"
        )
        for name, label in ROWS:
            seconds = times[name]
            blocks, peak = allocations(paths, name)
            print(
                f"{label:<50} {seconds * 1e6:>9.2f} {1 / seconds:>10.0f} "
                f"{size / seconds / 1e6:>8.0f} {times['naive'] / seconds:>8.1f}x "
                f"{seconds / times['limit']:>8.2f}x {blocks:>7.1f} {peak:>8.0f}"
            )


if __name__ == "__main__":
    main()
