"""AudioDevices hands mic frames to the loop `hop_frames` at a time from PortAudio's thread, in
order, none while muted (no devices opened: the thread is a plain one here)."""

from __future__ import annotations

import asyncio
import threading

from pivox.audio.devices import AudioDevices
from pivox.core.ring import AudioRing

FRAME = 960


async def delivered(hop: int, frames: int) -> tuple[list[bytes], int]:
    """Frames that reached `on_frame` after `frames` from another thread, and the loop's hops."""
    got: list[bytes] = []
    devices = AudioDevices(
        lambda *a: None, lambda *a: None, AudioRing(FRAME * 4),  # type: ignore[arg-type,return-value]
        on_frame=lambda mic, far: got.append(mic), on_failed=lambda e: None,
        on_recovered=lambda: None, clock=lambda: 0.0)
    devices.hop_frames = hop
    devices._loop = asyncio.get_running_loop()
    hops = 0
    handed = devices._frames

    def counted(batch: list[bytes]) -> None:
        nonlocal hops
        hops += 1
        handed(batch)

    devices._frames = counted  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: [
        devices._frame_threadsafe(bytes([k]) * FRAME) for k in range(frames)])
    thread.start()
    thread.join()
    await asyncio.sleep(0.05)
    return got, hops


async def test_frames_arrive_in_order_a_hop_at_a_time() -> None:
    got, hops = await delivered(4, 12)
    assert got == [bytes([k]) * FRAME for k in range(12)] and hops == 3
    got, hops = await delivered(1, 5)
    assert len(got) == 5 and hops == 5


async def test_nothing_reaches_the_loop_while_muted() -> None:
    assert await delivered(0, 10) == ([], 0)
