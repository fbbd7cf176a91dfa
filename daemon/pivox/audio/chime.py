"""The timer and alarm chime, generated in code, kept queued on the speaker while ringing.

One period is four short bell-like notes and a rest (1.4 s at 24 kHz PCM16); `Ringer` keeps
at least a period queued in the same `Playback` the replies go through, so the chime needs
no stream of its own and the echo canceller sees it as far end like any reply.
"""

from __future__ import annotations

from pivox.audio.playback import Playback

RATE = 24000
CHIME_ITEM = "chime"
"""The ring item (and response) id of the chime's audio."""
NOTE_HZ = 1046.5
NOTE_MS = 120
GAP_MS = 80
NOTES = 4
REST_MS = 600
AMPLITUDE = 9000
ATTACK_MS = 3


def chime_period() -> bytes:
    """One period of the chime: four notes (a tone and its octave, fading) then a rest."""
    import numpy as np

    n = RATE * NOTE_MS // 1000
    t = np.arange(n) / RATE
    attack = RATE * ATTACK_MS // 1000
    envelope = np.minimum(np.arange(n) / attack, 1.0) * np.exp(-t * 12)
    tone = np.sin(2 * np.pi * NOTE_HZ * t) + 0.3 * np.sin(4 * np.pi * NOTE_HZ * t)
    note = AMPLITUDE / 1.3 * envelope * tone
    gap = np.zeros(RATE * GAP_MS // 1000)
    period = np.concatenate([*([note, gap] * NOTES), np.zeros(RATE * REST_MS // 1000)])
    return period.astype("<i2").tobytes()


class Ringer:
    """Queues the chime while ringing: `start`, `top_up` on every tick, `stop`."""

    def __init__(self, playback: Playback) -> None:
        self.playback = playback
        self.period = b""  # made at the first ring: a device that never rings keeps no chime
        self.ringing = False

    def start(self) -> None:
        """Queue the first period now (after whatever barge-in cleared the speaker)."""
        self.period = self.period or chime_period()
        self.ringing = True
        self.top_up()

    def top_up(self) -> None:
        """Queue another period when less than one is left to play."""
        if self.ringing and self.playback.ring.available + self.playback.pending < len(
                self.period):
            self.playback.write(self.period, CHIME_ITEM, CHIME_ITEM)

    def stop(self) -> bool:
        """Drop the queued chime; True if it was ringing (the speaker then needs a flush)."""
        was = self.ringing
        self.ringing = False
        if was:
            self.playback.clear()
            self.playback.ring.forget(CHIME_ITEM)
        return was
