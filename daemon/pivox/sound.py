"""The daemon's microphone and speaker: opened, watched, flushed and closed off the event loop.

Every device call that can block in PortAudio (start, close, the barge-in flush) goes
through `pivox.devicecall.DeviceCalls` with a deadline; the loop itself only reads
`alive()`. A device that fails to open, or whose callbacks stop, puts the pair in error:
both are detached (the loop never touches them again), closed off the loop (aborted, never
drained), `on_change(True)` is called, and `check()` reopens them, with fresh PortAudio
instances, after a backoff delay of at least 1 s; `on_change(False)` once both work again.

The speaker records what it hands out into `far_end`; the mic's callback (PortAudio's
thread) takes the same number of reference bytes for each frame, so the pairing follows the
streams' frame counters and not the loop's timing, then does only
`loop.call_soon_threadsafe(on_frame, mic, far)`. Muted frames never leave that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from pivox.backoff import Backoff
from pivox.devicecall import DeviceCalls
from pivox.errors import DeviceError
from pivox.farend import FarEnd

if TYPE_CHECKING:
    from pivox.config import Config
    from pivox.ring import AudioRing

log = logging.getLogger("pivox.sound")

AUDIO_GRACE_S = 5.0
"""Time a freshly opened stream gets before a missing callback counts as a stall (a PulseAudio
null sink, for one, pulls nothing for about 2 s after it opens)."""
OPEN_TIMEOUT_S = 5.0
"""Deadline of opening and starting one device (PortAudio enumerates devices first)."""
CLOSE_TIMEOUT_S = 1.0
"""Deadline of a stream abort, close or flush; one that misses it is abandoned."""
BYTES_PER_MS = 48
"""PCM16 mono at 24 kHz."""
FAR_END_MS = 1000
FAR_MAX_LAG_MS = 200
"""A reference further ahead of the mic than this is skipped down to FAR_TARGET_LAG_MS: past
the playback latency plus the room, it would come after the echo it should explain."""
FAR_TARGET_LAG_MS = 40


class AudioDevice(Protocol):
    """What the daemon needs of a microphone or a speaker (PyAudio or file-backed)."""

    label: str

    def start(self) -> None: ...
    def close(self) -> None: ...
    def alive(self, now: float) -> bool: ...
    @property
    def error(self) -> str | None: ...


OpenMicrophone = Callable[["Config", Callable[[bytes], None]], AudioDevice]
OpenSpeaker = Callable[["Config", "AudioRing", FarEnd], AudioDevice]
"""The hardware factories: tests and the demo swap them (`pivox.daemon.Hardware`)."""


class SoundDevices:
    """The mic and the speaker, made by `open_*()`, kept working or in error with retries."""

    def __init__(
        self,
        open_speaker: Callable[[FarEnd], AudioDevice],
        open_microphone: Callable[[Callable[[bytes], None]], AudioDevice],
        *,
        on_frame: Callable[[bytes, bytes], None],
        muted: Callable[[], bool],
        on_change: Callable[[bool], None],
        clock: Callable[[], float],
    ) -> None:
        self._open_speaker, self._open_microphone = open_speaker, open_microphone
        self._on_frame, self._muted = on_frame, muted
        self._on_change, self._clock = on_change, clock
        self.far_end = FarEnd(FAR_END_MS * BYTES_PER_MS, max_lag=FAR_MAX_LAG_MS * BYTES_PER_MS,
                              target_lag=FAR_TARGET_LAG_MS * BYTES_PER_MS)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.mic: AudioDevice | None = None
        self.speaker: AudioDevice | None = None
        self.calls = DeviceCalls()
        self.error = ""
        """The last failure, for the status line."""
        self._failed_since: float | None = None
        self._backoff = Backoff(base=1.0, cap=30.0)
        self._retry_at = 0.0
        self._opened_at = 0.0
        self._busy = 0  # device calls the loop waits for (open, flush): no health check now
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def failed(self) -> bool:
        """True from a failure until both devices work again."""
        return self._failed_since is not None

    async def open(self) -> None:
        """Open what is not open; a failure puts the pair in error (retried by `check`)."""
        self._loop = asyncio.get_running_loop()
        self._busy += 1
        try:
            # PortAudio's init and terminate are process-global: never beside a close
            # (bounded: each close has its deadline)
            await asyncio.gather(*self._closing)
            if self.speaker is None:
                self.speaker = await self._start(self._open_speaker(self.far_end))
            if self.mic is None:
                self.mic = await self._start(self._open_microphone(self._frame_threadsafe))
        except DeviceError as exc:
            self.fail("audio device failed", str(exc))
            return
        finally:
            self._busy -= 1
        self._opened_at = self._clock()
        if self._failed_since is not None:
            log.info("audio devices back", extra={"PIVOX_EVENT": "audio_ok"})
            self._failed_since = None
            self._backoff.reset()
            self._on_change(False)

    def reopen(self) -> None:
        """Close both devices and open them anew (a config reload changed them)."""
        self._close_later(self._detach())
        self._spawn(self.open())

    def fail(self, what: str, error: str) -> None:
        """Error: close both devices off the loop; reopen after a backoff delay (>= 1 s)."""
        now = self._clock()
        delay = self._backoff.next_delay() + 1.0
        self._retry_at = now + delay
        if self._failed_since is None:
            self._failed_since = now
        self.error = error
        log.error("%s: %s; retrying in %.0f s", what, error, delay,
                  extra={"PIVOX_EVENT": "audio_error"})
        self._close_later(self._detach())
        self._on_change(True)

    def check(self, now: float) -> None:
        """Every tick: reopen when the retry is due, or notice a stalled device."""
        if self._busy:
            return  # opening, or a flush: the devices are a worker's meanwhile
        if self._failed_since is not None:
            if now >= self._retry_at:
                self._retry_at = float("inf")  # until this attempt fails
                self._spawn(self.open())
            return
        if now - self._opened_at < AUDIO_GRACE_S:
            return
        for device in (self.mic, self.speaker):
            if device is not None and not device.alive(now):
                error = device.error or "audio callbacks stopped"
                self.fail("audio stalled", f"{device.label}: {error}")
                return

    def alive(self, now: float) -> bool:
        """True while both callbacks keep coming (or fresh streams are in their grace).

        In error this is False: the pair retries on its own, and if it is not back within
        `WatchdogSec=` systemd restarts the service with a fresh PortAudio.
        """
        if self._failed_since is None and now - self._opened_at < AUDIO_GRACE_S:
            return True
        return all(dev is not None and dev.alive(now) for dev in (self.mic, self.speaker))

    async def flush(self) -> int:
        """Silence the speaker (barge-in) off the loop; the bytes it held unheard (0: none).

        A flush that misses its deadline abandons the speaker and puts the pair in error.
        """
        speaker = self.speaker
        flush = getattr(speaker, "flush", None)  # FileSpeaker holds nothing to flush
        if speaker is None or flush is None or self._busy:
            return 0
        self._busy += 1
        try:
            return int(await self.calls.run(flush, device=speaker.label, what="flush",
                                            timeout=CLOSE_TIMEOUT_S))
        except DeviceError as exc:  # abandoned: that speaker is never touched again
            if self.speaker is speaker:
                self.speaker = None
            self.fail("audio stalled", str(exc))
            return 0
        finally:
            self._busy -= 1

    def set_volume(self, level: int) -> None:
        """Change the speaker's volume, if it has one (one attribute its callback reads)."""
        setter = getattr(self.speaker, "set_volume", None)
        if setter is not None:
            setter(level)

    async def close(self) -> None:
        """Stop: abort and close both devices within CLOSE_TIMEOUT_S; pending work is cut."""
        for task in list(self._tasks):
            task.cancel()
        await self._close(self._detach())
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _start(self, device: AudioDevice) -> AudioDevice:
        """Start `device` within OPEN_TIMEOUT_S; one that fails is left alone, not closed."""
        await self.calls.run(device.start, device=device.label, what="open",
                             timeout=OPEN_TIMEOUT_S)
        return device

    def _detach(self) -> list[AudioDevice]:
        """The open devices, which the loop no longer touches: they are for closing."""
        devices = [d for d in (self.mic, self.speaker) if d is not None]
        self.mic = self.speaker = None
        return devices

    async def _close(self, devices: list[AudioDevice]) -> None:
        """Abort and close `devices` side by side, each within CLOSE_TIMEOUT_S; never raises."""

        async def close(device: AudioDevice) -> None:
            with contextlib.suppress(DeviceError):  # a missed deadline is logged by DeviceCalls
                await self.calls.run(device.close, device=device.label, what="close",
                                     timeout=CLOSE_TIMEOUT_S)

        await asyncio.gather(*(close(d) for d in devices))

    def _close_later(self, devices: list[AudioDevice]) -> None:
        task = self._spawn(self._close(devices))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _frame_threadsafe(self, frame: bytes) -> None:
        """PortAudio's thread: pair the frame with its reference, hand both to the loop.

        `muted()` reads a plain bool across threads: a frame read just as mute flips is
        checked again on the loop. The reference is taken even when muted, so the pairing
        holds across a mute.
        """
        far = self.far_end.take(len(frame))
        loop = self._loop
        if loop is not None and not loop.is_closed() and not self._muted():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_frame, frame, far)
