"""The CPU floor of bench/daemon_cpu.py: bare PyAudio duplex, optionally streaming to a server.

Run: .venv/bin/python bench/floor_duplex.py [--url WS_URL [--session JSON]] [--aec]
         [--wake MODEL]

Opens the default output and input streams the way pivox does (24 kHz mono PCM16, 20 ms
callbacks, PULSE_LATENCY_MSEC=40 unless set); the output plays silence. Without --url the mic
frames are dropped. With --url each mic frame goes to the server as an
`input_audio_buffer.append`, and every received audio delta is decoded into a 10 s bytearray
(written round and round, like pivox's ring). `--session` is a frame sent first (pivox's
`session.update`, so the server runs the same VAD). The bare libraries pivox wraps, called
in the mic callback on every frame as their docs show, no pivox code (the floors
bench/wake_cpu.py sets pivox beside): with --aec WebRTC AEC3 (pywebrtc-audio, 10 ms blocks;
the far end is the received reply audio, one mic frame's worth per mic frame in arrival
order, zeros while none is queued: the same content pivox's speaker hands its canceller,
though this speaker plays silence), then with --wake soxr 24 -> 16 kHz and
pymicro-wakeword's features and model. Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
from collections import deque
from collections.abc import Callable

import orjson
import pyaudio
from websockets.asyncio.client import ClientConnection, connect

RATE = 24000
FRAMES = RATE // 50  # 20 ms
RING_BYTES = RATE * 2 * 10
DELTA_TYPES = ("response.output_audio.delta", "response.audio.delta")  # GA, beta


async def stream(ws: ClientConnection, frames: asyncio.Queue[bytes],
                 far: deque[bytes] | None = None) -> None:
    """Send mic frames as appends and keep the received audio, until cancelled; with `far`,
    also queue the received audio there in whole mic frames (the echo reference)."""
    ring = bytearray(RING_BYTES)
    head = 0
    pending = bytearray()

    async def send() -> None:
        while True:
            frame = await frames.get()
            audio = base64.b64encode(frame).decode()
            await ws.send(orjson.dumps({"type": "input_audio_buffer.append", "audio": audio}))

    sender = asyncio.create_task(send())
    try:
        async for message in ws:
            event = orjson.loads(message)
            if event["type"] in DELTA_TYPES:
                pcm = base64.b64decode(event["delta"])
                end = min(head + len(pcm), RING_BYTES)
                ring[head:end] = pcm[: end - head]
                head = end % RING_BYTES
                if far is not None:
                    pending += pcm
                    while len(pending) >= FRAMES * 2:
                        far.append(bytes(pending[: FRAMES * 2]))
                        del pending[: FRAMES * 2]
    finally:
        sender.cancel()


def bare_libraries(aec: bool, wake: str | None,
                   far_frames: deque[bytes]) -> Callable[[bytes], None] | None:
    """The libraries pivox's echo canceller and detector wrap, on one mic frame (the echo
    reference: the next frame of `far_frames`, zeros when it is empty)."""
    if not aec and wake is None:
        return None
    import numpy as np
    import pywebrtc_audio
    import soxr
    from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

    block = RATE // 100
    apm = pywebrtc_audio.AudioProcessor(sample_rate=RATE, echo_cancellation=True,
                                        noise_suppression=False) if aec else None
    silence = np.zeros(FRAMES, np.int16)
    resampler = soxr.ResampleStream(RATE, 16000, 1, dtype="int16")
    features = MicroWakeWordFeatures()
    detector = MicroWakeWord.from_builtin(Model(wake)) if wake else None

    def process(frame: bytes) -> None:
        pcm = np.frombuffer(frame, np.int16)
        if apm is not None:
            far = np.frombuffer(far_frames.popleft(), np.int16) if far_frames else silence
            pcm = np.concatenate([apm.process(pcm[at:at + block], far[at:at + block])
                                  for at in range(0, len(pcm), block)])
        if detector is not None:
            for f in features.process_streaming(resampler.resample_chunk(pcm).tobytes()):
                detector.process_streaming(f)

    return process


async def run(url: str | None, session: str | None, aec: bool, wake: str | None) -> None:
    """Open the streams (and the connection) and run until a signal arrives."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    frames: asyncio.Queue[bytes] = asyncio.Queue()
    silence = bytes(FRAMES * 2)
    far_frames: deque[bytes] = deque(maxlen=RING_BYTES // (FRAMES * 2))
    detect = bare_libraries(aec, wake, far_frames)

    def speaker(data: bytes | None, count: int, info: dict[str, float], status: int) -> tuple:
        return silence, pyaudio.paContinue

    def mic(data: bytes | None, count: int, info: dict[str, float], status: int) -> tuple:
        if detect is not None and data:
            detect(data)
        if url is not None:
            loop.call_soon_threadsafe(frames.put_nowait, data)
        return None, pyaudio.paContinue

    os.environ.setdefault("PULSE_LATENCY_MSEC", "40")
    pa = pyaudio.PyAudio()
    streams = [
        pa.open(format=pyaudio.paInt16, channels=1, rate=RATE, frames_per_buffer=FRAMES,
                stream_callback=callback, **{kind: True})
        for kind, callback in (("output", speaker), ("input", mic))
    ]
    try:
        if url is None:
            await stop.wait()
            return
        async with connect(url, compression=None, max_size=None) as ws:
            if session:
                await ws.send(session)
            task = asyncio.create_task(stream(ws, frames, far_frames if aec else None))
            await stop.wait()
            task.cancel()
    finally:
        for s in streams:
            s.stop_stream()
            s.close()
        pa.terminate()


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="ws:// URL of the realtime server (none: audio only)")
    parser.add_argument("--session", help="a frame to send first (a session.update)")
    parser.add_argument("--aec", action="store_true", help="run bare WebRTC AEC3 on the mic")
    parser.add_argument("--wake", help="run the bare wake-word libraries with this model")
    args = parser.parse_args()
    asyncio.run(run(args.url, args.session, args.aec, args.wake))


if __name__ == "__main__":
    main()
