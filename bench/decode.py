"""Benchmark: audio-delta frames to PCM, naive vs pivox's fast path vs full decoder vs the limit.

Run: .venv/bin/python bench/decode.py [--reps N]

OpenAI frames first, then Gemini frames (`serverContent.modelTurn.parts[0].inlineData.data`,
the base64 five objects deep) on the same sizes: naive json + base64, `gemini_fastpath`, the
full `GeminiCodec.decode`, and the same limit; no allocator counts for those rows.

Prints, per PCM payload size, the median per-event time of each path over N repetitions,
events/s, PCM MB/s, ratios against the naive path and the limit measured in the same run,
allocator calls per event (see `allocator_calls`; needs a C compiler and glibc) and
tracemalloc figures per event (see `kept_and_peak`). Not a test: nothing passes or fails.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import orjson
import pybase64

from harness import arguments
from pivox.config import AudioSettings
from pivox.core.events import AudioDelta, ItemId, ResponseId
from pivox.core.ring import AudioRing
from pivox.daemon import BYTES_PER_MS
from pivox.protocol.fastpath import decode_audio, decode_into_ring, parse_audio_delta
from pivox.protocol.gemini import OUTPUT_MIME, GeminiCodec
from pivox.protocol.gemini_fastpath import parse_audio
from pivox.protocol.openai import decode_server_event, encode_server_event

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

    def fast_copy(self) -> object:
        chunk = parse_audio_delta(self.frame)
        assert chunk is not None
        pcm = decode_audio(chunk)
        assert pcm is not None
        self.ring.write(pcm, chunk.item_id)
        return chunk

    def full_floor(self) -> object:
        obj = orjson.loads(self.frame)
        self.ring.write(pybase64.b64decode(obj["delta"], validate=True), obj["item_id"])
        return obj

    def limit(self) -> object:
        self.dst[:] = pybase64.b64decode(self.span, validate=True)
        return None

    def pybase64_only(self) -> object:
        return pybase64.b64decode(self.span, validate=True)

    def binascii_only(self) -> object:
        return binascii.a2b_base64(self.span)


def make_gemini_frame(size: int) -> bytes:
    """A Gemini audio frame of `size` PCM bytes, compact JSON as orjson writes it."""
    data = pybase64.b64encode(os.urandom(size)).decode()
    return orjson.dumps({"serverContent": {"modelTurn": {"parts": [{"inlineData": {
        "mimeType": OUTPUT_MIME, "data": data}}]}}})


class GeminiPaths:
    """The Gemini paths, same interface as `Paths`; the codec has a response open."""

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        self.codec = GeminiCodec(model="bench")
        self.codec.decode(frame)  # opens the response: later frames continue it
        chunk = parse_audio(frame, self.codec)
        assert chunk is not None, "the benchmark frame must take the fast path"
        self.span = chunk.b64
        self.size = chunk.size
        self.batch = RING_BYTES // self.size
        self.ring = AudioRing(RING_BYTES)
        self.sink = bytearray()
        self.dst = memoryview(bytearray(self.size))
        self.drain = memoryview(bytearray(self.ring.capacity))

    reset = Paths.reset
    limit = Paths.limit

    def naive(self) -> object:
        obj = json.loads(self.frame.decode())
        part = obj["serverContent"]["modelTurn"]["parts"][0]["inlineData"]
        self.sink += base64.b64decode(part["data"])
        return obj

    def fast(self) -> object:
        chunk = parse_audio(self.frame, self.codec)
        assert chunk is not None
        decode_into_ring(chunk, self.ring)
        return chunk

    def full(self) -> object:
        (event,) = self.codec.decode(self.frame)
        assert isinstance(event, AudioDelta)
        self.ring.write(event.audio, event.item_id)
        return event


GEMINI_ROWS: tuple[tuple[str, str], ...] = (
    ("naive", "Gemini: json.loads→walk→base64.b64decode"),
    ("fast", "Gemini: pivox gemini_fastpath → AudioRing"),
    ("full", "Gemini: GeminiCodec.decode + ring.write"),
    ("limit", "limit: pybase64.b64decode(span) + memcpy"),
)

ROWS: tuple[tuple[str, str], ...] = (
    ("naive", "bytes→str→json.loads→base64.b64decode→bytearray"),
    ("fast", "pivox fast path → AudioRing"),
    ("fast_copy", "  … its pybase64 + copy fallback"),
    ("full", "pivox decode_server_event + ring.write"),
    ("full_floor", "  … its floor: orjson + pybase64 + ring.write"),
    ("limit", "limit: pybase64.b64decode(span) + memcpy"),
    ("pybase64_only", "pybase64.b64decode(span) alone"),
    ("binascii_only", "binascii.a2b_base64(span) alone"),
)


def time_path(paths: Paths | GeminiPaths, name: str, reps: int) -> float:
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


def kept_and_peak(paths: Paths | GeminiPaths, name: str) -> tuple[float, float]:
    """(kept blocks, peak bytes) per event, after warm-up, by tracemalloc.

    kept: memory blocks still allocated per event when the caller keeps what each event
    returned (the parsed dict, the AudioChunk, the AudioDelta), from the difference of two
    snapshots' statistics over ALLOC_EVENTS events. `peak`: the largest extra memory held at
    once while handling one event (the transient copies of the audio).
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


Counts = dict[str, dict[str, tuple[float, float]]]  # size -> path -> (calls, big calls)


def count_in_this_process() -> Counts:
    """Allocator calls per event of every path, read from bench/alloc_count.c's counters
    (this process runs preloaded with it, under PYTHONMALLOC=malloc)."""
    library = ctypes.CDLL(None)
    counters = [library.pivox_alloc_calls, library.pivox_alloc_big]
    for counter in counters:
        counter.restype = ctypes.c_ulonglong

    def read() -> tuple[int, int]:
        return counters[0](), counters[1]()

    empty = [after - before for before, after in zip(read(), read(), strict=True)]
    counts: Counts = {}
    for size in SIZES:
        paths = Paths(make_frame(size))
        counts[str(size)] = {}
        for name, _ in ROWS:
            step = getattr(paths, name)
            for _ in range(paths.batch):  # warm-up: caches, the ring's accounting
                step()
            totals, events = [0, 0], 0
            for _ in range(2):
                paths.reset()
                for _ in range(paths.batch):
                    before = read()
                    step()
                    after = read()
                    for k in range(2):
                        totals[k] += after[k] - before[k] - empty[k]
                    events += 1
            counts[str(size)][name] = (totals[0] / events, totals[1] / events)
    return counts


def allocator_calls() -> tuple[Counts | None, str]:
    """Allocator calls per event, counted in a child process, or None and why not.

    CPython has no allocation counter of its own: the child runs with PYTHONMALLOC=malloc
    (every object allocation is a malloc call) and bench/alloc_count.c preloaded to count them.
    """
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None, "no C compiler to build bench/alloc_count.c"
    with tempfile.TemporaryDirectory() as tmp:
        shim = Path(tmp) / "alloc_count.so"
        source = Path(__file__).with_name("alloc_count.c")
        built = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", shim, source],
                               capture_output=True, text=True)
        if built.returncode:
            return None, f"building alloc_count.c failed: {built.stderr.strip()[:200]}"
        env = {**os.environ, "LD_PRELOAD": str(shim), "PYTHONMALLOC": "malloc"}
        child = subprocess.run([sys.executable, __file__, "--count-allocations"],
                               env=env, capture_output=True, text=True)
    if child.returncode:
        return None, f"the counting run failed: {child.stderr.strip()[-200:]}"
    return json.loads(child.stdout), ""


def main() -> None:
    args = arguments(__doc__, reps=(7, "repetitions per path (median)"),
                     count_allocations=(False, argparse.SUPPRESS))
    if args.count_allocations:
        print(json.dumps(count_in_this_process()))
        return
    counts, why_not = allocator_calls()
    print(f"pybase64 {pybase64.get_version()}; medians of {args.reps} repetitions")
    if counts is None:
        print(f"allocator calls not counted: {why_not}")
    for size in SIZES:
        frame = make_frame(size)
        paths = Paths(frame)
        times = {name: time_path(paths, name, args.reps) for name, _ in ROWS}
        print(f"\nPCM {size} B per event (frame {len(frame)} B)")
        print(
            f"{'path':<46} {'µs/event':>9} {'events/s':>9} {'MB/s':>6} {'vs naive':>8} "
            f"{'vs limit':>8} {'allocs':>6} {'big':>4} {'kept':>4} {'peak B':>7}"
        )
        for name, label in ROWS:
            seconds = times[name]
            kept, peak = kept_and_peak(paths, name)
            calls, big = counts[str(size)][name] if counts else (float("nan"),) * 2
            print(
                f"{label:<46} {seconds * 1e6:>9.2f} {1 / seconds:>9.0f} "
                f"{size / seconds / 1e6:>6.0f} {times['naive'] / seconds:>7.1f}x "
                f"{seconds / times['limit']:>7.2f}x {calls:>6.1f} {big:>4.1f} {kept:>4.1f} "
                f"{peak:>7.0f}"
            )
    for size in SIZES:
        frame = make_gemini_frame(size)
        gemini = GeminiPaths(frame)
        times = {name: time_path(gemini, name, args.reps) for name, _ in GEMINI_ROWS}
        print(f"\nGemini: PCM {size} B per event (frame {len(frame)} B)")
        print(f"{'path':<46} {'µs/event':>9} {'events/s':>9} {'MB/s':>6} {'vs naive':>8} "
              f"{'vs limit':>8} {'kept':>4} {'peak B':>7}")
        for name, label in GEMINI_ROWS:
            seconds = times[name]
            kept, peak = kept_and_peak(gemini, name)
            print(
                f"{label:<46} {seconds * 1e6:>9.2f} {1 / seconds:>9.0f} "
                f"{size / seconds / 1e6:>6.0f} {times['naive'] / seconds:>7.1f}x "
                f"{seconds / times['limit']:>7.2f}x {kept:>4.1f} {peak:>7.0f}"
            )


if __name__ == "__main__":
    main()
