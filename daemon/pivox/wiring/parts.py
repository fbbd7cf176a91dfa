"""`DaemonParts`: what the wiring modules reach of the daemon (`pivox.daemon.Daemon`
implements it), so none of them imports the composition root."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pivox.audio.capture import Capture
from pivox.audio.devices import AudioDevices
from pivox.audio.playback import Playback
from pivox.config import Config
from pivox.core import machine as m
from pivox.core.responses import Action, ResponseTracker
from pivox.core.ring import AudioRing
from pivox.core.turns import TurnTracker
from pivox.net.link import Link
from pivox.skills.timers import Timers


class DaemonParts(Protocol):
    """The daemon's parts and the few routes a wiring module may take back into it."""

    config: Config
    clock: Callable[[], float]
    machine: m.DeviceMachine
    link: Link
    playback: Playback
    ring: AudioRing
    audio: AudioDevices
    capture: Capture
    responses: ResponseTracker
    turns: TurnTracker
    stats: dict[str, int]
    timers: Timers

    def feed(self, inp: Any) -> None: ...
    def carry_out(self, actions: list[Action]) -> None: ...
    def log_fields(self, **fields: Any) -> dict[str, Any]: ...
    def quiet(self) -> bool: ...
    def set_volume(self, level: int) -> None: ...
    def set_muted(self, muted: bool) -> None: ...
