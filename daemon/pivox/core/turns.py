"""Per-turn latency bookkeeping (pure: the caller passes the time).

A turn starts when the user's speech ends (SpeechStopped, or the push-to-talk commit) and
ends when its reply has played out. Its figures become the journal fields of one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Turn:
    """One user turn and the reply it got; times are monotonic seconds."""

    turn_id: int
    started: float
    response_id: str | None = None
    first_delta: float | None = None
    first_audible: float | None = None
    underruns_at_start: int = 0
    items: list[str] = field(default_factory=list)
    """Items of the reply in order of their first delta (each once: `_seen` answers "is it
    new?" in O(1), so a delta's cost does not grow with the items before it)."""
    _seen: set[str] = field(default_factory=set, repr=False)

    def latency_ms(self) -> int | None:
        """Speech end (or release) → first audio delta, in ms."""
        return None if self.first_delta is None else round((self.first_delta - self.started) * 1e3)

    def audible_ms(self) -> int | None:
        """Speech end (or release) → first reply frame handed to the speaker, in ms."""
        if self.first_audible is None:
            return None
        return round((self.first_audible - self.started) * 1e3)

    def report(self, underruns: int) -> tuple[str, dict[str, Any]]:
        """The journal line of the played-out turn: its text and its fields (a reply came)."""
        text = (f"turn {self.turn_id} done: first audio after {self.latency_ms()} ms, "
                f"audible after {self.audible_ms()} ms, {underruns} underruns")
        return text, {
            "TURN_ID": self.turn_id, "RESPONSE_ID": self.response_id,
            "ITEM_ID": self.items[0] if self.items else None, "PIVOX_EVENT": "turn_done",
            "PIVOX_LATENCY_MS": self.latency_ms(), "PIVOX_AUDIBLE_MS": self.audible_ms(),
            "PIVOX_UNDERRUNS": underruns,
        }


class TurnTracker:
    """Numbers turns and records when their reply's audio arrived and was first heard."""

    def __init__(self) -> None:
        self._next_id = 1
        self.current: Turn | None = None
        self.last_latency_ms: int | None = None
        """The latency of the last finished turn that got audio (for the status)."""

    def start(self, now: float, underruns: int) -> Turn:
        """A new turn begins now (any unfinished one is abandoned)."""
        self.current = Turn(turn_id=self._next_id, started=now, underruns_at_start=underruns)
        self._next_id += 1
        return self.current

    def audio_arrived(self, now: float, response_id: str, item_id: str) -> None:
        """The first delta of a reply arrived; replies without a turn (tool follow-ups) too."""
        turn = self.current
        if turn is None:
            return
        if turn.response_id is None:
            turn.response_id = response_id
            turn.first_delta = now
        if item_id not in turn._seen:
            turn._seen.add(item_id)
            turn.items.append(item_id)

    def heard(self, now: float, played: Callable[[str], int]) -> None:
        """Note when the speaker first took bytes of the reply (`played(item)`: its bytes
        played so far); called on every tick, it stops looking once it has seen them."""
        turn = self.current
        if turn is not None and turn.first_audible is None and any(
                played(item) for item in turn.items):
            turn.first_audible = now

    def finish(self) -> Turn | None:
        """The reply has played out: return the finished turn, if one was open."""
        turn, self.current = self.current, None
        if turn is not None and turn.first_delta is not None:
            self.last_latency_ms = turn.latency_ms()
        return turn
