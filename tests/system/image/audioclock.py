"""Paces the container's FIFO-backed ALSA devices at 24 kHz s16le mono, 20 ms a tick.

Every tick it writes the next 20 ms of a looped PCM file into the mic FIFO and drains
20 ms from the speaker FIFO, counting the bytes played into `played` in the same directory.
Usage: audioclock.py RUNTIME_DIR MIC_PCM
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time

FRAME = 960
TICK = 0.02


def fifo(path: str) -> int:
    if not os.path.exists(path):
        os.mkfifo(path)
        os.chmod(path, 0o666)
    # O_RDWR: opening never waits for the other end; a small pipe keeps latency low
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 4096)
    return fd


def main(directory: str, mic_pcm: str) -> None:
    mic = fifo(os.path.join(directory, "mic.fifo"))
    speaker = fifo(os.path.join(directory, "speaker.fifo"))
    with open(mic_pcm, "rb") as f:
        pcm = f.read()
    played, position, deadline = 0, 0, time.monotonic()
    while True:
        frame = pcm[position : position + FRAME]
        position = (position + FRAME) % len(pcm)
        # nobody records: the frame is lost, as a real mic's would be
        with contextlib.suppress(BlockingIOError):
            os.write(mic, frame)
        try:
            chunk = os.read(speaker, FRAME)
        except BlockingIOError:
            chunk = b""
        if chunk.strip(b"\0"):
            played += len(chunk)
            with open(os.path.join(directory, "played"), "w") as out:
                out.write(str(played))
        deadline += TICK
        time.sleep(max(0.0, deadline - time.monotonic()))


if __name__ == "__main__":
    main(*sys.argv[1:3])
