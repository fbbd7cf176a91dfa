"""Memory of a standalone `pivox serve` while one client floods it with audio appends.

Starts `python -m pivox.server` on a free loopback port, connects one client (no keepalive
of its own; offering permessage-deflate with `--deflate`) that sends
`input_audio_buffer.append` frames of `--pcm-mib` MiB of PCM, each followed by a `clear`, for
`--seconds`, then a `commit` whose error says every frame before it was handled. Prints the
server's RSS (from /proc) at start, its peak (sampled every 0.2 s) and one second after the
client left, and how many appends went through.
Run: `.venv/bin/python bench/serve_flood.py --seconds 20 --pcm-mib 11.9` (11.9 MiB of PCM is
a frame just under the server's 16 MiB limit).
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from harness import arguments, memory_mb


async def flood(url: str, seconds: float, pcm_mib: float, deflate: bool) -> tuple[int, str]:
    """Appends sent, and how the connection ended."""
    audio = base64.b64encode(bytes(int(pcm_mib * 1024 * 1024))).decode()
    append = orjson.dumps({"type": "input_audio_buffer.append", "audio": audio}).decode()
    clear = '{"type": "input_audio_buffer.clear"}'
    sent = 0
    end = time.monotonic() + seconds
    try:
        async with connect(url, max_size=None, ping_interval=None,
                           compression="deflate" if deflate else None) as ws:
            while time.monotonic() < end:
                await ws.send(append)
                await ws.send(clear)
                sent += 1
            await ws.send('{"type": "input_audio_buffer.commit", "event_id": "last"}')
            while True:
                event = orjson.loads(await ws.recv())
                if event["type"] == "error" and event["error"].get("event_id") == "last":
                    return sent, "client left"
    except ConnectionClosed as exc:
        return sent, f"dropped: {exc}"


async def main() -> None:
    args = arguments(__doc__, seconds=20.0, pcm_mib=(11.9, "PCM per append, MiB"),
                     deflate=(False, "offer permessage-deflate"))
    server = subprocess.Popen(
        [sys.executable, "-m", "pivox.server", "--port", "0", "--reply", "tones"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1]
        start = peak = memory_mb(server.pid)
        began = time.monotonic()
        client = asyncio.create_task(flood(url, args.seconds, args.pcm_mib, args.deflate))
        while not client.done():
            await asyncio.sleep(0.2)
            peak = max(peak, memory_mb(server.pid))
        sent, ending = await client
        took = time.monotonic() - began
        await asyncio.sleep(1.0)
        after = memory_mb(server.pid)
    finally:
        server.terminate()
        server.wait(10)
    print(f"{sent} appends of {args.pcm_mib} MiB PCM in {took:.1f} s ({ending})")
    print(f"server RSS: start {start:.0f} MB, peak {peak:.0f} MB, 1 s after {after:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
