"""The timers' ringing on the device: the chime starts and stops with the machine's RINGING
state, and no reply plays over it."""

from __future__ import annotations

from collections.abc import Callable

from pivox.audio.chime import Ringer
from pivox.core import machine as m
from pivox.core.schedule import Ring
from pivox.wiring.parts import DaemonParts


class Alarms:
    """Joins the timers (skills) to the chime (audio) and the machine, on the daemon's behalf."""

    def __init__(self, daemon: DaemonParts, on_rung: Callable[[Ring], None]) -> None:
        self.d = daemon
        self.ringer = Ringer(daemon.playback)
        self._on_rung = on_rung

    async def run(self) -> None:
        """The timers' clock: a due timer rings (TimerDue), an unanswered ring ends."""
        await self.d.timers.run(self._rang, lambda: self.d.feed(m.RingStopped()))

    def _rang(self, ring: Ring) -> None:
        self.d.feed(m.TimerDue())
        self._on_rung(ring)  # Home Assistant's event entity hears of it (MQTT)

    def start(self) -> None:
        """Route: StartRinging; the chime plays and the timers note it sounded."""
        self.ringer.start()
        self.d.timers.sounding()

    def stop(self) -> None:
        """Route: StopRinging; the timers note how it ended, the chime is flushed off the loop."""
        t = self.d.machine.last_transition
        self.d.timers.dismiss(type(t.input).__name__ if t else "stop")
        if self.ringer.stop():
            self.d.audio.silence(None, lambda item_id, heard: None)

    def tick(self) -> None:
        """Keep the chime's audio ahead of the speaker while it rings."""
        self.ringer.top_up()

    def on_response_created(self) -> None:
        """Route: a response was created while ringing; it is cancelled (none plays over the
        chime)."""
        if self.d.machine.state is not m.State.RINGING:
            return
        cut = self.d.responses.barge_in()  # never None: the new response is open
        for cancel in cut.cancels if cut is not None else ():
            self.d.link.send(cancel)
