"""Capture: the mic path as one pipeline, frame → echo canceller → wake gate → pre-roll → uplink.

Pure: no threads, no I/O, no clock. The audio edge (`pivox.audio.devices`) pairs each mic frame
with the far-end reference the speaker handed out for it and the loop calls `feed`:

- the echo canceller (`pivox.audio.aec.EchoCanceller`, when echo cancellation is on) cleans every
  frame, streamed or not, so it stays converged between turns; once the speaker has been
  silent for `QUIET_MS` (and before anything played) it passes frames through untouched,
  keeping what it learnt;
- the wake gate (any object with `process(frame) -> bool`, e.g. a wake-word detector) sees
  every cleaned frame and says whether it heard its cue; the caller turns that into a
  machine input; while it is `stirring` (its cue may be under way) frames reach it one by one;
- while the device is not streaming, the cleaned frame goes into the pre-roll (the audio
  from just before a turn starts, sent first by `drain_preroll`); while it streams, `feed`
  returns the frame to append.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pivox.core.preroll import PreRoll

__all__ = ["Canceller", "Capture", "Captured", "MicState", "WakeGate"]


class Canceller(Protocol):
    """Removes the speaker's echo from a mic frame (`pivox.audio.aec.EchoCanceller`)."""

    def process(self, mic: bytes, far: bytes) -> bytes: ...


class MicState(Protocol):
    """Whether the mic is muted and whether its frames are sent (the device's state machine)."""

    @property
    def muted(self) -> bool: ...
    @property
    def streaming(self) -> bool: ...


class WakeGate(Protocol):
    """Says whether a cleaned mic frame completes its cue (a wake word)."""

    def process(self, frame: bytes) -> bool: ...
    @property
    def stirring(self) -> bool:
        """True while what it hears might become its cue (then it wants each frame at once)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Captured:
    """What one mic frame produced: audio to append now (or None), and the gate's verdict."""

    append: bytes | None
    woke: bool = False


HOP_IDLE = 4
"""Mic frames (80 ms) a hop gathers while nothing is sent and the gate is not stirring. At
most four: `pivox.audio.devices` counts the speaker stalled after five mic frames in a row
without a far-end write, and the frames of one hop are paired in one go."""

_KEPT = Captured(append=None)
_KEPT_WOKE = Captured(append=None, woke=True)
"""What a frame kept in the pre-roll produced: shared, as 50 new objects a second add up."""


class Capture:
    """One mic frame at a time through canceller, gate and pre-roll; see the module doc."""

    __slots__ = ("canceller", "gate", "preroll")

    def __init__(self, preroll: PreRoll, canceller: Canceller | None = None,
                 gate: WakeGate | None = None) -> None:
        self.preroll = preroll
        self.canceller = canceller
        self.gate = gate

    def feed(self, mic: bytes, far: bytes, *, streaming: bool) -> Captured:
        """Clean `mic` against `far` (the same length of reference); append it or keep it."""
        frame = self.canceller.process(mic, far) if self.canceller is not None else mic
        woke = self.gate.process(frame) if self.gate is not None else False
        if streaming:
            return Captured(append=frame, woke=woke)
        self.preroll.push(frame)
        return _KEPT_WOKE if woke else _KEPT

    def frames_per_hop(self, mic: MicState) -> int:
        """Mic frames the audio thread may gather before handing them over: none while muted
        (they are dropped there), one while streaming or while the wake gate stirs (a wake
        word is heard as soon as it ends), else four (each hop wakes the loop once, not 4×)."""
        if mic.muted:
            return 0
        if mic.streaming or (self.gate is not None and self.gate.stirring):
            return 1
        return HOP_IDLE

    def drain_preroll(self) -> bytes:
        """The pre-roll kept so far, oldest first; empties it."""
        return self.preroll.drain()
