"""Benchmark: CPU of `pivox run` in wake_word mode in an idle room, beside its floors, in one run.

Run: .venv/bin/python bench/wake_cpu.py [--rounds N] [--window S] [--warmup S]

The room talks but nobody says the wake word: the private PulseAudio's paced pipe source
(tests/pulse.py) plays generated speech without it (tests/wake_corpus.py: sentences and
near-misses, ten espeak-ng voices) round and round. Every program below hears the same
frames; CPU is measured as in bench/daemon_cpu.py (utime+stime of the process over
`--window` s after `--warmup` s, % of one core):

- floor: PyAudio duplex only (bench/floor_duplex.py), the duplex floor of daemon_cpu.py;
- floor + bare wake word: its mic callback runs soxr and pymicro-wakeword on every frame as
  their docs show (`floor_duplex.py --wake okay_nabu`);
- floor + bare AEC + wake word: the same after WebRTC AEC3 (`--aec --wake okay_nabu`);
- pivox run, push_to_talk, AEC off: pivox with the WebSocket open, nothing sent, no library;
- pivox run, wake_word, AEC off: the same plus the detector;
- pivox run, wake_word (AEC on, the shipped config): the same plus the echo canceller.

Ratios (each cost the median over rounds of (with - without) measured in the same round, so
the machine's load drift between rounds cancels): the detector's cost inside pivox
(wake_word - push_to_talk, AEC off) against the bare library's (floor + wake word - floor),
target <= 1.2x; the libraries' cost inside pivox
(wake_word with AEC - push_to_talk) against the bare libraries'; and everything pivox adds
over the duplex floor against the bare libraries alone. Appends/s must be 0 in every row.
Not a test: nothing passes or fails.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.pulse import MicWriter, PulseAudio
from tests.wake_corpus import other_speech_parts

import harness
from pivox.core.events import InputAudioAppend, InputAudioClear
from pivox.server import ServerOptions

FLOOR = "floor: PyAudio duplex only"
LIBRARY = "floor + bare wake word"
LIBRARIES = "floor + bare AEC + wake word"
PTT = "pivox: push_to_talk, AEC off"
WAKE = "pivox: wake_word, AEC off"
WAKE_AEC = "pivox: wake_word, AEC on"
CONFIGS = {PTT: ("push_to_talk", "false"), WAKE: ("wake_word", "false"),
           WAKE_AEC: ("wake_word", "true")}


class Room:
    """Keeps the mic writer playing the room's speech while the bench runs."""

    def __init__(self, mic: MicWriter, seconds: float) -> None:
        self.mic = mic
        self.speech, self.said = other_speech_parts(seconds)
        threading.Thread(target=self._run, name="bench-room", daemon=True).start()

    def _run(self) -> None:
        while True:
            if self.mic.pending < len(self.speech) // 4:
                self.mic.play(self.speech)
            time.sleep(0.1)


def false_wakes(server: harness.ServerThread, room: Room) -> list[str]:
    """What the room said where each wake's pre-roll (the append after a clear) was taken."""
    assert server.server is not None
    out = []
    speech = np.frombuffer(room.speech, np.int16).astype(np.float64)
    for record in list(server.server.connections):
        events = [event for _, event in tuple(record.received)]
        for before, event in itertools.pairwise(events):
            if isinstance(before, InputAudioClear) and isinstance(event, InputAudioAppend):
                pre = np.frombuffer(event.audio, np.int16).astype(np.float64)
                n = 1 << (len(pre) + len(speech)).bit_length()
                xcorr = np.fft.irfft(np.fft.rfft(speech, n) * np.conj(np.fft.rfft(pre, n)), n)
                end = 2 * (int(np.argmax(xcorr)) + len(pre))  # where the detector fired
                said = [s for s in room.said if s[0] < end][-2:]
                out.append(f"at {end / 48000:.1f} s of the room loop, after "
                           + " / ".join(f"{t!r} ({v}, {w} wpm)" for _, t, v, w in said))
    return out


def run(args: argparse.Namespace) -> dict[str, harness.Scenario]:
    """All rounds; returns the scenarios by name."""
    names = (FLOOR, LIBRARY, LIBRARIES, PTT, WAKE, WAKE_AEC)
    out = {name: harness.Scenario(name) for name in names}
    with PulseAudio() as pulse, tempfile.TemporaryDirectory() as tmp:
        assert pulse.mic is not None
        room = Room(pulse.mic, 60)
        server = harness.ServerThread(ServerOptions(port=0, speed=1.0, reply="ramp", reply_ms=500))
        floor = [sys.executable, str(harness.BENCH / "floor_duplex.py")]
        commands = {
            FLOOR: floor,
            LIBRARY: [*floor, "--wake", "okay_nabu"],
            LIBRARIES: [*floor, "--aec", "--wake", "okay_nabu"],
        }
        for name, (mode, aec) in CONFIGS.items():
            path = Path(tmp, f"{mode}-{aec}.toml")
            path.write_text(harness.pivox_config(server.url, mode=mode,
                                         audio=f"echo_cancellation = {aec}"))
            commands[name] = harness.pivox_command(path)
        try:
            for r in range(args.rounds):
                print(f"round {r + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
                harness.measure_round(r, list(commands.items()), out, pulse.env, server, args)
            for line in false_wakes(server, room):
                print(f"false wake: {line}", flush=True)
        finally:
            server.close()
    return out


def report(results: dict[str, harness.Scenario], args: argparse.Namespace) -> None:
    """Print the table and the ratios."""
    harness.print_scenarios(results, args, ("cpu", "rss", "appends"), "program")
    cpu = {name: s.median("cpu") for name, s in results.items()}

    def cost(with_: str, without: str) -> float:
        """Median over rounds of (with - without) in the same round: load drift cancels."""
        pairs = zip(results[with_].samples, results[without].samples, strict=True)
        return statistics.median(a.cpu - b.cpu for a, b in pairs)

    library = cost(LIBRARY, FLOOR)
    libraries = cost(LIBRARIES, FLOOR)
    detector = cost(WAKE, PTT)
    both = cost(WAKE_AEC, PTT)
    print(f"bare wake word: {library:.2f} % of a core; inside pivox (wake_word - push_to_talk, "
          f"AEC off): {detector:.2f} %; ratio {detector / library:.2f}x (target <= 1.2x)")
    print(f"bare AEC + wake word: {libraries:.2f} %; inside pivox (wake_word with AEC - "
          f"push_to_talk): {both:.2f} %; ratio {both / libraries:.2f}x (target <= 1.2x)")
    print(f"pivox wake_word with AEC over the duplex floor: {cpu[WAKE_AEC] - cpu[FLOOR]:.2f} % "
          f"= {(cpu[WAKE_AEC] - cpu[FLOOR]) / libraries:.2f}x the bare libraries (pivox's own "
          f"loop, push_to_talk over the floor: {cpu[PTT] - cpu[FLOOR]:.2f} %)")
    print(f"RSS: wake_word {results[WAKE].median('rss') - results[PTT].median('rss'):+.1f} MB, "
          f"with AEC {results[WAKE_AEC].median('rss') - results[PTT].median('rss'):+.1f} MB "
          "over push_to_talk")


def main() -> None:
    """Parse the arguments, run, print."""
    args = harness.arguments(__doc__, **harness.WINDOW)
    report(run(args), args)


if __name__ == "__main__":
    main()
