"""Daemon memory under a hostile server: huge frames and floods of valid audio stay bounded.

A plain websockets server on loopback sends what the issue measured (one 11 MiB-PCM delta
then 32 MiB junk frames: RSS 53 -> 637 MB before; a valid 15.9 MiB delta repeated: 359 MB)
and a flood of the largest deltas the link accepts, as fast as the socket allows, to a real
`pivox run` subprocess on PulseAudio. The daemon's peak RSS (VmHWM in /proc/PID/status) may
exceed its RSS when idle on the link, just before the attack, by at most GROWTH_BOUND_MB
(docs/faults.md).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve

from pivox.net.session import MAX_FRAME_BYTES
from tests.daemon_harness import wait_until
from tests.pulse import PulseAudio

GROWTH_BOUND_MB = 48
"""Peak RSS over idle the daemon may reach under any attack: the reply backlog
(audio.max_reply_s, 14.4 MB) + frames in flight (MAX_QUEUE + 2 of up to 4 MiB, each held
about twice: frame and PCM). A Pi Zero 2 W has 512 MB."""
IDLE_S = 3.0
ATTACK_S = 6.0
MiB = 1024 * 1024


def delta(pcm_bytes: int, n: int = 0) -> bytes:
    """A well-formed GA audio delta carrying `pcm_bytes` of PCM."""
    return orjson.dumps({
        "type": "response.output_audio.delta", "event_id": f"ev_{n}", "response_id": "resp_1",
        "item_id": "item_1", "output_index": 0, "content_index": 0,
        "delta": base64.b64encode(bytes(pcm_bytes)).decode()})


SESSION = orjson.dumps({"type": "session.created", "event_id": "ev_s",
                        "session": {"id": "sess_1", "object": "realtime.session"}})
FRAMES_SENT = 20
"""Big frames the attack lasts for at least (after ATTACK_S), up to MAX_ATTACK_S."""
MAX_ATTACK_S = 30.0


def attack_frames(name: str) -> tuple[bytes, bytes]:
    """(the first frame, every later frame) of an attack, built once."""
    if name == "11MiB-delta-then-32MiB-junk":
        return delta(11 * MiB), b"x" * (32 * MiB)
    if name == "15.9MiB-delta-repeated":
        frame = delta(int(15.9 * MiB) // 4 * 3)
        return frame, frame
    frame = delta((MAX_FRAME_BYTES - 400) // 4 * 3)  # the largest delta the link accepts
    return frame, frame


ATTACKS = ("11MiB-delta-then-32MiB-junk", "15.9MiB-delta-repeated",
           "largest-accepted-delta-flood")


@asynccontextmanager
async def hostile_server(first: bytes, rest: bytes, sent: list[int],
                         go: asyncio.Event) -> AsyncIterator[str]:
    """A server that sends session.created and, once `go` is set, `first`, then `rest` flat
    out, on every link; `sent[0]` counts the big frames sent."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send(SESSION, text=True)
        await go.wait()
        frame = first
        while True:
            await ws.send(frame, text=True)
            sent[0] += 1
            frame = rest

    async with serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def rss_mb(pid: int, key: str = "VmHWM") -> float:
    """VmHWM (peak RSS) or VmRSS of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {key}")


@pytest.mark.parametrize("attack", ATTACKS)
async def test_daemon_memory_stays_bounded_under_hostile_frames(
    live_pulse: PulseAudio, tmp_path: Path, attack: str,
) -> None:
    config = tmp_path / "pivox.toml"
    sent, go = [0], asyncio.Event()
    async with hostile_server(*attack_frames(attack), sent, go) as url:
        config.write_text(
            f'[server]\nurl = "{url}"\nmodel = ""\nreconnect_max_s = 1.0\n'
            '[session]\nmode = "push_to_talk"\n[button]\nenabled = false\n'
            "[led]\nenabled = false\n")
        process = subprocess.Popen(
            [sys.executable, "-m", "pivox", "run", "--config", str(config)],
            env={**os.environ, "OPENAI_API_KEY": ""}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await asyncio.sleep(IDLE_S)
            idle = rss_mb(process.pid, "VmRSS")
            go.set()
            await asyncio.sleep(ATTACK_S)
            with contextlib.suppress(TimeoutError):
                await wait_until(lambda: sent[0] >= FRAMES_SENT, MAX_ATTACK_S - ATTACK_S)
            assert process.poll() is None, "the daemon died"
            peak = rss_mb(process.pid)
        finally:
            process.terminate()
            try:
                await wait_until(lambda: process.poll() is not None, 5, "stopped")
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
    print(f"{attack}: {sent[0]} big frames sent, daemon RSS idle {idle:.0f} MB, "
          f"peak {peak:.0f} MB")
    assert peak - idle < GROWTH_BOUND_MB
    assert process.returncode == 0
