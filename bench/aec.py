"""Benchmark: echo cancellation in pivox: ERLE in the echo room, CPU beside its floors and the
bare library, and the latency the capture pipeline adds.

Run: .venv/bin/python bench/aec.py [--rounds 3] [--window 15] [--warmup 5]   # about 8 min

1. ERLE: `pivox check`'s echo self-test (`pivox.audio.echotest.measure_echo`: 8 chirps, ERLE after
   2 s) in the echo room of TESTING.md (tests/pulse.py `room=True`, loopback 30 and 150 ms) at echo
   levels -20, -6 and 0 dB: the delay it measures, the echo level and the ERLE reached.
2. CPU: separate processes on a private PulseAudio (null sink speaker, paced pipe-source
   mic) with duplex traffic (bench/daemon_cpu.py's: a 400 ms tone every 5 s, 3.6 s ramp
   replies): `pivox run` always-on with audio.echo_cancellation true and false, and
   bench/floor_duplex.py with and without websocket, and with `--aec` (bare AEC3 in its
   live mic callback, its far end the received replies, as pivox's). Each cost is the
   median over rounds of (with - without) measured back to back in the same round, so
   the machine's load drift between rounds cancels. The bare library also in a tight loop:
   pywebrtc-audio's AudioProcessor (AEC3, 10 ms blocks) on 50 frames per second of the
   same kind (tone + silence mic, ramp far end), timed in this process. Target: pivox's AEC
   cost (AEC on - AEC off) <= 1.2x the bare library's.
3. Latency: per 20 ms frame, `Capture.feed` (pairing done, canceller, pre-roll or append)
   against the bare AudioProcessor on the same frames, and the algorithmic delay of AEC3's
   band-split filters (an impulse through the canceller).

Not a test: nothing passes or fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.fixtures_server import pcm_silence, pcm_tone
from tests.pulse import PulseAudio

import harness  # type: ignore[import-not-found]
from pivox.audio.aec import EchoCanceller, load_webrtc
from pivox.audio.capture import Capture
from pivox.audio.echotest import measure_echo
from pivox.config import load_config
from pivox.core.events import SessionUpdate
from pivox.core.preroll import PreRoll
from pivox.net.link import session_config
from pivox.protocol.openai import encode_client_event
from pivox.server import ServerOptions
from pivox.server.voice import ramp

FRAME = 480  # samples per 20 ms at 24 kHz
LEVELS_DB = (-20, -6, 0)
ROOM_DELAYS_MS = (30, 150)


def erle_rows(echo_ms: int) -> list[str]:
    """pivox check's self-test in an echo room whose loopback is `echo_ms` late, per level."""
    rows = []
    with PulseAudio(room=True, echo_ms=echo_ms) as room:
        measure_echo()  # a fresh room sink's first seconds are off; see pivox.echotest
        for db in LEVELS_DB:
            room.set_echo_db(db)
            r = measure_echo()
            delay = f"{r.delay_ms:.1f}" if r.delay_ms is not None else "-"
            echo = f"{r.echo_db:.1f}" if r.echo_db is not None else "-"
            erle = f"{r.erle_db:.1f}" if r.erle_db is not None else "-"
            rows.append(f"{db:>9} dB {delay:>9} {echo:>9} {erle:>8}")
    return rows


def frames(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Mic (tone cycles) and far end (ramp), as the CPU bench's traffic."""
    n = int(seconds * 24000)
    cycle = np.frombuffer(pcm_tone(400) + pcm_silence(4600), np.int16)
    mic = np.resize(cycle, n)
    far = np.resize(np.frombuffer(ramp(24000 * 3), np.int16), n)
    return mic, far


def bare_ms_per_s(frames_per_s: float, seconds: float = 10.0) -> float:
    """CPU ms per second of the bare AudioProcessor on `frames_per_s` 20 ms frames."""
    mic, far = frames(seconds)
    apm = load_webrtc().AudioProcessor(sample_rate=24000, echo_cancellation=True)
    start = time.process_time()
    for i in range(0, len(mic) - 239, 240):
        apm.process(mic[i : i + 240], far[i : i + 240])
    per_frame = (time.process_time() - start) / (len(mic) // FRAME)
    return per_frame * frames_per_s * 1000


def paired_ms(with_: harness.Scenario, without: harness.Scenario) -> float:
    """Median over rounds of the CPU difference, each round's pair back to back, in ms per s."""
    return statistics.median(a.cpu - b.cpu for a, b in zip(with_.samples, without.samples,
                                                           strict=True)) * 10


def cpu_rows(args: argparse.Namespace) -> list[str]:
    out = {name: harness.Scenario(name) for name in (
        "floor: PyAudio duplex only", "floor: + websocket, duplex traffic",
        "floor: + websocket + bare AEC3", "pivox run: duplex, AEC off",
        "pivox run: duplex, AEC on")}
    with PulseAudio() as pulse, tempfile.TemporaryDirectory() as tmp:
        replies = harness.ServerThread(
            ServerOptions(port=0, speed=1.0, reply="ramp", reply_ms=3600))
        configs = {}
        for aec_on in (True, False):
            path = Path(tmp) / f"aec-{aec_on}.toml"
            path.write_text(harness.pivox_config(
                replies.url, audio=f"echo_cancellation = {str(aec_on).lower()}"))
            configs[aec_on] = harness.pivox_command(path)
        update = SessionUpdate(session=session_config(load_config(None, [
            "session.mode=always_on"])))
        floor = [sys.executable, str(harness.BENCH / "floor_duplex.py")]
        floor_ws = [*floor, "--url", replies.url, "--session", encode_client_event(update)]
        assert pulse.mic is not None
        feeder = harness.Feeder(pulse.mic)
        try:
            for r in range(args.rounds):
                print(f"round {r + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
                feeder.on = True
                order = [("floor: + websocket, duplex traffic", floor_ws),
                         ("floor: + websocket + bare AEC3", [*floor_ws, "--aec"]),
                         ("pivox run: duplex, AEC off", configs[False]),
                         ("pivox run: duplex, AEC on", configs[True])]
                harness.measure_round(r, order, out, pulse.env, replies, args)
                feeder.stop()
                out["floor: PyAudio duplex only"].samples.append(
                    harness.measure(floor, pulse.env, replies, args))
        finally:
            replies.close()
    on, off = out["pivox run: duplex, AEC on"], out["pivox run: duplex, AEC off"]
    rate = on.median("appends") or 50.0
    bare = [bare_ms_per_s(50.0) for _ in range(args.rounds)]
    rows = [f"{s.name:<38} {s.median('cpu'):6.2f}  [{', '.join(f'{x.cpu:.2f}' for x in s.samples)}]"
            for s in out.values()]
    added = paired_ms(on, off)
    live = paired_ms(out["floor: + websocket + bare AEC3"],
                     out["floor: + websocket, duplex traffic"])
    rows.append(f"{'bare AudioProcessor, 50 frames/s':<38} {statistics.median(bare) / 10:6.2f}  "
                f"[{', '.join(f'{b / 10:.2f}' for b in bare)}]")
    rows.append(f"pivox AEC cost (on - off): {added:.1f} ms CPU per s = "
                f"{added / statistics.median(bare):.2f}x the bare library (target <= 1.2x); "
                f"appends/s {rate:.1f}")
    floor_ws_cpu = out["floor: + websocket, duplex traffic"].median("cpu")
    rows.append(f"pivox AEC on vs floor with websocket: {on.median('cpu') / floor_ws_cpu:.2f}x")
    rows.append(f"bare AEC3 in the floor's live callback (far end: the replies): {live:.1f} ms "
                f"per s;"
                f" pivox's AEC cost {added / live:.2f}x that" if live > 0 else
                "bare AEC3 in the floor's callback: below this machine's noise")
    return rows


def latency_rows(reps: int = 2000) -> list[str]:
    mic, far = frames(reps * 0.02 + 1)
    capture = Capture(PreRoll(14400), canceller=EchoCanceller())
    apm = load_webrtc().AudioProcessor(sample_rate=24000, echo_cancellation=True)
    feed, bare = [], []
    for k in range(reps):
        m, f = mic[k * FRAME : (k + 1) * FRAME], far[k * FRAME : (k + 1) * FRAME]
        mb, fb = m.tobytes(), f.tobytes()
        t = time.perf_counter()
        capture.feed(mb, fb, streaming=k % 2 == 0)
        feed.append(time.perf_counter() - t)
        t = time.perf_counter()
        apm.process(m[:240], f[:240])
        apm.process(m[240:], f[240:])
        bare.append(time.perf_counter() - t)
    impulse = np.zeros(24000, np.int16)
    impulse[2400] = 20000
    canceller = EchoCanceller()
    out = np.frombuffer(b"".join(canceller.process(impulse[i : i + FRAME].tobytes(),
                                                   bytes(FRAME * 2))
                                 for i in range(0, len(impulse), FRAME)), np.int16)
    delay = int(np.argmax(np.abs(out))) - 2400

    def us(xs: list[float], q: float) -> float:
        return float(np.percentile(xs, q)) * 1e6

    ratio = statistics.median(feed) / statistics.median(bare)
    return [f"Capture.feed per 20 ms frame: median {us(feed, 50):.0f} us, "
            f"p99 {us(feed, 99):.0f} us",
            f"bare AudioProcessor (2 blocks): median {us(bare, 50):.0f} us, "
            f"p99 {us(bare, 99):.0f} us -> pivox {ratio:.2f}x",
            f"AEC3 algorithmic delay: {delay} samples = {delay / 24:.1f} ms"]


def main() -> None:
    args = harness.arguments(__doc__, **harness.WINDOW, skip_cpu=(False, "ERLE and latency only"))
    print(f"machine: {harness.machine()}")
    for echo_ms in ROOM_DELAYS_MS:
        print(f"ERLE in the echo room (loopback {echo_ms} ms), pivox check's self-test:")
        print(f"{'echo level':>12} {'delay ms':>9} {'echo dB':>9} {'ERLE dB':>8}")
        for row in erle_rows(echo_ms):
            print(row)
    print("capture pipeline latency:")
    for row in latency_rows():
        print("  " + row)
    if not args.skip_cpu:
        print(f"CPU, % of one core, median of {args.rounds} (rounds in brackets), "
              f"{args.warmup:.0f} s warm-up, {args.window:.0f} s window:")
        for row in cpu_rows(args):
            print("  " + row)


if __name__ == "__main__":
    main()
