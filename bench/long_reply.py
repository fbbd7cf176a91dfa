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
import os
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.fixtures_server import pcm_tone
from tests.pulse import PulseAudio

from pivox.server import RealtimeServer, ServerOptions


def rss_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main_async(args: argparse.Namespace) -> None:
    options = ServerOptions(port=0, reply="ramp", reply_ms=args.reply_s * 1000, speed=0.0)
    with PulseAudio() as pulse, tempfile.TemporaryDirectory() as tmp:
        assert pulse.mic is not None
        async with RealtimeServer(options) as server:
            config = Path(tmp) / "pivox.toml"
            config.write_text(
                f'[server]\nurl = "{server.url}"\nmodel = ""\n'
                f"ping_interval_s = {args.ping_s}\nping_timeout_s = {args.ping_s}\n"
                '[session]\nmode = "always_on"\nvad_silence_duration_ms = 300\n'
                "[button]\nenabled = false\n[led]\nenabled = false\n")
            process = subprocess.Popen(
                [sys.executable, "-m", "pivox", "run", "--config", str(config)],
                env={**os.environ, "OPENAI_API_KEY": ""}, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            lines: list[str] = []

            def pump(stream: Any) -> None:
                for line in stream:
                    lines.append(line.rstrip("\n"))

            threading.Thread(target=pump, args=(process.stderr,), daemon=True).start()
            try:
                while not any("-> listening" in line for line in lines):
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)
                idle_rss = rss_mb(process.pid, "VmRSS")
                with pulse.recording() as recording:
                    pulse.mic.play(pcm_tone(600))
                    started = time.monotonic()
                    limit = args.reply_s + 30
                    while not any("turn 1 done" in line for line in lines):
                        if time.monotonic() - started > limit or process.poll() is not None:
                            break
                        await asyncio.sleep(0.2)
                    await asyncio.sleep(0.5)
                    pcm = recording.stop()
                peak = rss_mb(process.pid, "VmHWM")
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
    offline = [line for line in lines if "offline:" in line]
    print(f"reply sent: {args.reply_s} s at socket speed; heard {heard_s:.2f} s, ramp steps "
          f"missing {missing}; links {len(server.connections)}; offline lines {len(offline)}")
    for line in offline[:3]:
        print("  " + line)
    print(f"daemon RSS idle {idle_rss:.1f} MB, peak {peak:.1f} MB "
          f"(+{peak - idle_rss:.1f} MB; the reply's PCM is {args.reply_s * 0.048:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reply-s", type=int, default=180)
    parser.add_argument("--ping-s", type=float, default=10.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
