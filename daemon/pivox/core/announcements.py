"""Announcements and questions from outside: a bounded queue and when the next may start.

Pure (the caller passes the time). `say` is an announcement: a chime, then the text spoken
by an out-of-band response (OpenAI: `conversation: "none"`, so the conversation never sees
it; Gemini Live has none, so there it is a turn of the conversation). `ask` is a question:
spoken as part of the conversation, then the device listens for the answer without the wake
word, and the next user transcript within the window is the answer.

Rules: the queue holds at most `limit` entries (one more is refused, never dropped
silently); the next starts only when the device is at rest and nothing is playing or
pending (so a user's turn is never cut and a reply is never talked over); one is spoken at
a time. The response an announcement creates is told apart by its `metadata` tag, or, for a
provider whose responses carry no `metadata` at all (Gemini), by being the first response
created after it was sent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pivox.core.events import ClientEvent, OutOfBandResponse, ResponseCreate, UserText

Kind = Literal["say", "ask"]

TAG = "pivox"
"""The metadata key of an announcement's response; its value is ANNOUNCEMENT."""
ANNOUNCEMENT = "announcement"
SAY_INSTRUCTIONS = (
    "You are a speaker making an announcement. Say the user's message aloud exactly as "
    "written, word for word, and nothing else: no greeting, no comment, no question."
)
ASK_PREFIX = "Ask me this question, word for word, and then wait for my answer: "
PENDING_S = 10.0
"""How long a sent announcement may wait for its response to be created."""
ANSWER_GRACE_S = 30.0
"""How long after an asked question (beyond the follow-up window) a transcript is its answer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Announcement:
    """One queued announcement (`say`) or question (`ask`); `number` counts from 1."""

    kind: Kind
    text: str
    number: int

    def client_events(self) -> tuple[ClientEvent, ...]:
        """What to send to the server to have it spoken."""
        if self.kind == "say":
            return (OutOfBandResponse(instructions=SAY_INSTRUCTIONS, text=self.text,
                                      metadata={TAG: ANNOUNCEMENT, "number": str(self.number)}),)
        return (UserText(text=ASK_PREFIX + self.text), ResponseCreate())


class Announcements:
    """The queue, the announcement being spoken and the question awaiting its answer."""

    def __init__(self, limit: int = 8) -> None:
        self.limit = limit
        self._queue: deque[Announcement] = deque()
        self._count = 0
        self._pending: Announcement | None = None
        """Sent, its response not created yet."""
        self._pending_until = 0.0
        self.speaking: str | None = None
        """The response id of the announcement being spoken."""
        self._answer_until: float | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, kind: Kind, text: str) -> Announcement | None:
        """Queue one; None when the queue is full (the caller says so)."""
        if len(self._queue) >= self.limit:
            return None
        self._count += 1
        entry = Announcement(kind=kind, text=text, number=self._count)
        self._queue.append(entry)
        return entry

    def next_due(self, now: float, *, at_rest: bool, busy: bool) -> Announcement | None:
        """The next to send now, taken off the queue; None while the device is not at rest,
        something plays or waits to, or another one is under way (a sent one whose response
        was not created within PENDING_S counts as lost)."""
        if self._pending is not None and now > self._pending_until:
            self._pending = None
        if not self._queue or not at_rest or busy or self._pending or self.speaking:
            return None
        entry = self._pending = self._queue.popleft()
        self._pending_until = now + PENDING_S
        if entry.kind == "ask":
            self._answer_until = None
        return entry

    def drop_all(self) -> list[Announcement]:
        """The link is down: what is queued cannot be spoken; hand it back to be reported."""
        dropped = [*self._queue]
        self._queue.clear()
        self._pending = self.speaking = None
        return dropped

    def created(self, response_id: str, response: Mapping[str, Any], now: float,
                answer_window_s: float) -> bool:
        """A response was created: True when it speaks an announcement (so barge-in cancels
        it by id and truncates nothing: it is in no conversation)."""
        pending, self._pending = self._pending, None
        metadata = response.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get(TAG) == ANNOUNCEMENT:
            self.speaking = response_id
            return True
        if pending is not None and pending.kind == "ask":
            self._answer_until = now + answer_window_s + ANSWER_GRACE_S
        elif pending is not None and "metadata" not in response:
            self.speaking = response_id  # a provider that echoes no metadata: the next one
            return True
        elif pending is not None:
            self._pending = pending  # a user's response came first; ours is still to come
        return False

    def finished(self, response_id: str) -> None:
        """A response ended (done, cancelled or given up)."""
        if response_id == self.speaking:
            self.speaking = None

    def answer(self, now: float) -> bool:
        """A user transcript arrived: True (once) when it answers the last question."""
        until, self._answer_until = self._answer_until, None
        return until is not None and now <= until
