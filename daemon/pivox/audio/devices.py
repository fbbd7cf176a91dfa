"""The daemon's sound devices: open the speaker and the mic, watch them, reopen after failures,
and hand each mic frame to the loop with the far-end reference that belongs to it.

The speaker records what it hands out into a `FarEnd`; the mic's callback (PortAudio's
thread) does only `loop.call_soon_threadsafe(...)` with its frames, `hop_frames` of them at
once (0: muted, they stay there; 1 while streaming; 4 while nothing is sent: each hop wakes the
loop, about 0.1 ms of CPU here; the pre-roll loses nothing, a wake word is heard later).
On the loop each mic frame takes its reference from the FarEnd, in order; a frame whose
reference the speaker has not written yet waits (PulseAudio may deliver the mic's burst
before the speaker's), up to `FAR_WAIT_FRAMES`; past that, or at once when the speaker wrote
nothing during the last `FAR_IDLE_FRAMES` mic frames (not started yet, reopening), the
speaker counts as stalled and frames go on with silence as their reference, their positions
given up (`FarEnd.pass_over`: the pairing stays put), until it writes again (still behind:
the pairing restarts at its newest byte). Then `on_frame(mic, far)`. Everything else runs
on the loop. Failures reach the owner through `on_failed(error)` / `on_recovered()`; the
owner decides what the device state becomes.

No device call that can block in PortAudio (start, close, the barge-in flush) runs on the
loop: each goes through `pivox.audio.devicecall.DeviceCalls`, on its own thread with a deadline.
After a failure both devices are detached (the loop never touches them again) and closed
off the loop, aborted, never drained; the retry opens new ones with fresh PortAudio
instances, once the closes in flight are done (PortAudio's init and terminate are global).

`open_canceller` builds the echo canceller the capture pipeline runs on the loop, or says in
one log line why there is none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from pivox.audio.aec import EchoCanceller, MissingDependency
from pivox.audio.capture import Capture
from pivox.audio.devicecall import DeviceCalls
from pivox.audio.wake import wake_gate
from pivox.config import AudioSettings, Config
from pivox.core.backoff import Backoff
from pivox.core.errors import DeviceError
from pivox.core.farend import FarEnd
from pivox.core.preroll import PreRoll
from pivox.core.ring import AudioRing

log = logging.getLogger("pivox.devices")

__all__ = ["AudioDevice", "AudioDevices", "open_canceller"]

BYTES_PER_MS = 48
"""PCM16 mono at 24 kHz."""
AUDIO_GRACE_S = 5.0
"""Time a freshly opened stream gets before a missing callback counts as a stall (a PulseAudio
null sink, for one, pulls nothing for about 2 s after it opens)."""
FAR_END_MS = 1000
FAR_WAIT_FRAMES = 50
"""Mic frames (1 s) held for a late speaker before it counts as stalled."""
FAR_IDLE_FRAMES = 5
"""Mic frames (100 ms) without a single speaker write after which it counts as stalled."""
FAR_TARGET_LAG_MS = 10
"""Slack the far-end reference keeps above its lowest level over a second of mic frames (see
`pivox.core.farend`): what is not needed against the callbacks' jitter is lead over the echo."""
OPEN_TIMEOUT_S = 5.0
"""Deadline of opening and starting one device (PortAudio enumerates devices first)."""
CLOSE_TIMEOUT_S = 1.0
"""Deadline of a stream abort, close or flush; one that misses it is abandoned."""


class AudioDevice(Protocol):
    """What the daemon needs of a microphone or a speaker (PyAudio or file-backed)."""

    label: str

    def start(self) -> None: ...
    def close(self) -> None: ...
    def alive(self, now: float) -> bool: ...
    @property
    def error(self) -> str | None: ...


OpenMicrophone = Callable[[Config, Callable[[bytes], None]], AudioDevice]
OpenSpeaker = Callable[[Config, AudioRing, FarEnd], AudioDevice]


def open_canceller(audio: AudioSettings) -> EchoCanceller | None:
    """The echo canceller the config asks for, or None (logged once with the reason)."""
    if not audio.echo_cancellation:
        log.info("echo cancellation off (audio.echo_cancellation = false)")
        return None
    if audio.frame_ms % 10:
        log.warning("echo cancellation off: audio.frame_ms = %d is not a multiple of 10 ms",
                    audio.frame_ms, extra={"PIVOX_EVENT": "aec_off"})
        return None
    try:
        canceller = EchoCanceller(noise_suppression=audio.noise_suppression)
    except MissingDependency as exc:
        log.warning("echo cancellation off: %s; without it the device may hear its own replies "
                    "as speech", exc, extra={"PIVOX_EVENT": "aec_off"})
        return None
    log.info("echo cancellation on (WebRTC AEC3%s)",
             ", noise suppression" if audio.noise_suppression else "")
    return canceller


def new_capture(config: Config) -> Capture:
    """The mic pipeline the config asks for: the echo canceller when on, the wake word in
    wake_word mode, a fresh pre-roll."""
    a, s = config.audio, config.session
    return Capture(PreRoll(a.preroll_ms * BYTES_PER_MS), canceller=open_canceller(a),
                   gate=wake_gate(s.mode, s.wake_word, s.wake_cutoff))


class AudioDevices:
    """Speaker and mic of one daemon; `open()`, `check(now)` on the loop's tick, `close()`."""

    def __init__(
        self,
        open_speaker: OpenSpeaker,
        open_microphone: OpenMicrophone,
        ring: AudioRing,
        *,
        on_frame: Callable[[bytes, bytes], None],
        on_failed: Callable[[str], None],
        on_recovered: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self._open_speaker = open_speaker
        self._open_microphone = open_microphone
        self.ring = ring
        self.far_end = FarEnd(FAR_END_MS * BYTES_PER_MS,
                              target_lag=FAR_TARGET_LAG_MS * BYTES_PER_MS)
        self._on_frame = on_frame
        self.hop_frames = 1
        """Mic frames PortAudio's thread gathers before handing them to the loop (0: drop
        them, muted); the owner sets it as its state changes (`Capture.frames_per_hop`)."""
        self._batch: list[bytes] = []  # mic frames not handed over yet: PortAudio's thread only
        self._on_failed = on_failed
        self._on_recovered = on_recovered
        self._clock = clock
        self.mic: AudioDevice | None = None
        self.speaker: AudioDevice | None = None
        self.calls = DeviceCalls()
        self.error = ""
        """The last failure, for the status line."""
        self.volume: int | None = None
        """The volume last set (None: the config's)."""
        self.failed_since: float | None = None
        self._backoff = Backoff(base=1.0, cap=30.0)
        self._retry_at = 0.0
        self._opened_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._busy = 0  # device calls the loop waits for (open, flush): no health check now
        self._waiting: deque[bytes] = deque()
        self._speaker_stalled = False
        self._last_written = 0
        self._frames_since_write = 0
        self.stalls = 0
        """Times the speaker fell FAR_WAIT_FRAMES behind the mic (its reference went silent)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._flushing: tuple[AudioDevice, asyncio.Future[int]] | None = None
        """The speaker being flushed and the flush: a close of it waits for the flush."""

    async def open(self, config: Config) -> None:
        """Open speaker and mic off the loop; on failure close both, retry after a backoff."""
        self._loop = asyncio.get_running_loop()
        self._busy += 1
        try:
            await asyncio.gather(*self._closing)  # never beside a close (each has a deadline)
            if self.speaker is None:
                self.speaker = await self._start(
                    self._open_speaker(config, self.ring, self.far_end))
            if self.mic is None:
                self.mic = await self._start(
                    self._open_microphone(config, self._frame_threadsafe))
        except DeviceError as exc:
            self._failed("audio device failed", str(exc))
            return
        finally:
            self._busy -= 1
        self._opened_at = self._clock()
        if self.failed_since is not None:
            log.info("audio devices back", extra={"PIVOX_EVENT": "audio_ok"})
            self.failed_since = None
            self._backoff.reset()
            self._on_recovered()

    def reopen(self, config: Config) -> None:
        """Close both devices and open them anew (a reload changed them), off the loop."""
        self._close_later(self._detach())
        self._spawn(self.open(config))

    async def close(self) -> None:
        """Stop: abort and close both within CLOSE_TIMEOUT_S, cut pending work; never raises."""
        for task in list(self._tasks):
            task.cancel()
        await self._close(self._detach())
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def check(self, now: float, config: Config) -> None:
        """The tick: retry after a failure when its delay is up, or notice a stalled stream."""
        if self._busy:
            return  # opening, or a flush: the devices are a worker's meanwhile
        if self.failed_since is not None:
            if now >= self._retry_at:
                self._retry_at = float("inf")  # until this attempt fails
                self._spawn(self.open(config))
            return
        if now - self._opened_at < AUDIO_GRACE_S:
            return
        for device in (self.mic, self.speaker):
            if device is not None and not device.alive(now):
                error = device.error or "audio callbacks stopped"
                self._failed("audio stalled", f"{device.label}: {error}")
                return

    def alive(self, now: float) -> bool:
        """True while both audio callbacks keep coming (or a fresh stream is in its grace).

        After a failure this is False: the owner retries on its own, and if the device is not
        back within `WatchdogSec=` systemd restarts the service with a fresh PortAudio.
        """
        if self.failed_since is None and now - self._opened_at < AUDIO_GRACE_S:
            return True
        return all(dev is not None and dev.alive(now) for dev in (self.mic, self.speaker))

    async def flush_speaker(self) -> int:
        """Silence the speaker off the loop; the ring bytes it had handed out unheard (0: none).

        A flush that misses its deadline abandons the speaker and fails the devices. The flush
        runs on even if the caller is cancelled: `close()` waits for it before closing.
        """
        speaker = self.speaker
        flush = getattr(speaker, "flush", None)  # FileSpeaker holds nothing to flush
        if speaker is None or flush is None or self._busy:
            return 0
        self._flushing = (speaker, asyncio.ensure_future(self._flush(speaker, flush)))
        return max(0, await asyncio.shield(self._flushing[1]))

    def silence(self, item_id: str | None, heard: Callable[[str, int], None]) -> None:
        """Barge-in over playing audio: flush the speaker off the loop, then call
        `heard(item_id, n)` with the bytes of `item_id` the listener heard (what the sound
        card was handed but never played does not count); no call when `item_id` is None."""

        async def flush_then_report() -> None:
            unheard = await self.flush_speaker()
            if item_id is not None:
                heard(item_id, max(0, self.ring.played(item_id) - unheard))

        self._spawn(flush_then_report())

    async def _flush(self, speaker: AudioDevice, flush: Callable[[], int]) -> int:
        """The flush call: the unheard bytes, or -1 if it missed its deadline (abandoned)."""
        self._busy += 1
        try:
            return int(await self.calls.run(flush, device=speaker.label, what="flush",
                                            timeout=CLOSE_TIMEOUT_S))
        except DeviceError as exc:  # abandoned: that speaker is never touched again
            if self.speaker is speaker:
                self.speaker = None
            self._failed("audio stalled", str(exc))
            return -1
        finally:
            self._busy -= 1

    def set_volume(self, level: int) -> None:
        """Change the speaker's volume, if it has one."""
        self.volume = level
        setter = getattr(self.speaker, "set_volume", None)
        if setter is not None:
            setter(level)

    def _failed(self, what: str, error: str) -> None:
        now = self._clock()
        delay = self._backoff.next_delay() + 1.0
        self._retry_at = now + delay
        if self.failed_since is None:
            self.failed_since = now
        self.error = error
        log.error("%s: %s; retrying in %.0f s", what, error, delay,
                  extra={"PIVOX_EVENT": "audio_error"})
        self._close_later(self._detach())
        self._on_failed(error)

    async def _start(self, device: AudioDevice) -> AudioDevice:
        """Start `device` within OPEN_TIMEOUT_S; one that fails is left alone, not closed."""
        await self.calls.run(device.start, device=device.label, what="open",
                             timeout=OPEN_TIMEOUT_S)
        return device

    def _detach(self) -> list[AudioDevice]:
        """The open devices, which the loop no longer touches: they are for closing (mic
        frames still waiting for their reference are dropped)."""
        self._waiting.clear()
        devices = [d for d in (self.mic, self.speaker) if d is not None]
        self.mic = self.speaker = None
        return devices

    async def _close(self, devices: list[AudioDevice]) -> None:
        """Abort and close `devices` side by side, each within CLOSE_TIMEOUT_S (a speaker mid-
        flush once the flush is over: never two calls on one stream at once); never raises."""

        async def close(device: AudioDevice) -> None:
            flushing = self._flushing
            # never beside a flush of it (bounded by its deadline); abandoned if that missed it
            if flushing is not None and flushing[0] is device and await flushing[1] < 0:
                return
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
        """PortAudio's thread: hand frames to the loop, never block; muted frames stay here.

        `hop_frames` is a plain value read across threads: a frame read just as mute flips is
        checked again on the loop.
        """
        loop = self._loop
        size = self.hop_frames
        if loop is None or loop.is_closed() or not size:
            self._batch.clear()
            return
        batch = self._batch
        batch.append(frame)
        if len(batch) < size:
            return
        self._batch = []
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._frames, batch)

    def _frames(self, frames: list[bytes]) -> None:
        """The loop: one hop's mic frames, in order."""
        for frame in frames:
            self._frame(frame)

    def _frame(self, frame: bytes) -> None:
        """The loop: pair waiting mic frames with their reference, in order, and pass them on."""
        waiting = self._waiting
        waiting.append(frame)
        written = self.far_end.written
        self._frames_since_write = 0 if written != self._last_written else (
            self._frames_since_write + 1)
        self._last_written = written
        idle = self._frames_since_write >= FAR_IDLE_FRAMES
        while waiting:
            far = self.far_end.take(len(waiting[0]))
            if far is None and self._speaker_stalled and not idle:  # back, maybe behind
                self.far_end.reanchor()
                self._speaker_stalled = False
            if far is not None:
                self._speaker_stalled = False
            elif self._speaker_stalled or idle or len(waiting) > FAR_WAIT_FRAMES:
                if not self._speaker_stalled:
                    self.stalls += 1
                    log.debug("speaker %d frames behind the mic: echo reference silent",
                              len(waiting), extra={"PIVOX_EVENT": "far_end_stall"})
                self._speaker_stalled = True
                far = self.far_end.pass_over(len(waiting[0]))
            else:
                return
            self._on_frame(waiting.popleft(), far)
