"""Benchmark: the longest reply played whole, sent as fast as the socket allows.

Run: .venv/bin/python bench/long_reply.py [--reply-s 180] [--ping-s 10]

A real `pivox run` (always-on, PyAudio on a private PulseAudio) asks the bundled server,
in this process, for one ramp reply of `--reply-s` seconds at speed 0 (every delta sent at
once: the cloud sends faster than real time too). The sink monitor is recorded; a ramp
sample encodes its position and saturates at 32767 after 10.9 s, so the reply heard is the
count of non-zero samples, and the ramp steps show whether anything of its start is missing.
Prints the reply heard vs sent, the links used (1: the keepalive held), the offline lines
logged, and the daemon's peak RSS (VmHWM) against its RSS when idle before the reply.
Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.fixtures_server import pcm_tone
from tests.pulse import PulseAudio

from harness import arguments, memory_mb, pivox_config, start_pivox
from pivox.server import RealtimeServer, ServerOptions


async def main_async(args: argparse.Namespace) -> None:
    options = ServerOptions(port=0, reply="ramp", reply_ms=args.reply_s * 1000, speed=0.0)
    with PulseAudio() as pulse, tempfile.TemporaryDirectory() as tmp:
        assert pulse.mic is not None
        async with RealtimeServer(options) as server:
            config = Path(tmp) / "pivox.toml"
            config.write_text(pivox_config(
                server.url, level="info",
                server=f"ping_interval_s = {args.ping_s}\nping_timeout_s = {args.ping_s}",
                session="vad_silence_duration_ms = 300"))
            process, out = start_pivox(config)
            try:
                while not out.count("-> listening"):
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)
                idle_rss = memory_mb(process.pid)
                with pulse.recording() as recording:
                    pulse.mic.play(pcm_tone(600))
                    started = time.monotonic()
                    limit = args.reply_s + 30
                    while not out.count("turn 1 done"):
                        if time.monotonic() - started > limit or process.poll() is not None:
                            break
                        await asyncio.sleep(0.2)
                    await asyncio.sleep(0.5)
                    pcm = recording.stop()
                peak = memory_mb(process.pid, "VmHWM")
            finally:
                process.terminate()
                process.wait(10)
    samples = array("h", pcm)
    heard_s = sum(1 for s in samples if s > 0) / 24000
    steps = {s for s in samples if 0 < s < 32767}
    missing_list = [v for v in range(1, 32767) if v not in steps]
    missing = len(missing_list)
    if missing_list:
        print("missing steps from", missing_list[0], "to", missing_list[-1])
    offline = [line for line in out.lines if "offline:" in line]
    print(f"reply sent: {args.reply_s} s at socket speed; heard {heard_s:.2f} s, ramp steps "
          f"missing {missing}; links {len(server.connections)}; offline lines {len(offline)}")
    for line in offline[:3]:
        print("  " + line)
    print(f"daemon RSS idle {idle_rss:.1f} MB, peak {peak:.1f} MB "
          f"(+{peak - idle_rss:.1f} MB; the reply's PCM is {args.reply_s * 0.048:.1f} MB)")


def main() -> None:
    asyncio.run(main_async(arguments(__doc__, reply_s=180, ping_s=10.0)))


if __name__ == "__main__":
    main()
