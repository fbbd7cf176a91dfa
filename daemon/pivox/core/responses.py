"""Which response is live, which one the speaker plays, and what each reply event asks for.

Pure (push in, drain out): the daemon reports what the server said (`created`, `done`,
`call_started`), what its tools answered (`call_output`), the audio it queued
(`audio_arrived`) and what the user or the link did (`barge_in`, `timed_out`,
`link_dropped`, `played_out`); each method returns the client events to send and the
machine inputs to feed, in order. Nothing here sends, plays or sleeps.

Rules (Realtime API: `response.cancel`, `conversation.item.create` of a
`function_call_output`, then `response.create` for the model to answer the outputs):
- A response is *open* from `response.created` to `response.done`; `live` is the newest
  open one. Several may be open at once: a user turn's, and one pivox asks for itself
  that is no user turn (`origin="announcement"`, issue 22: an out-of-band `response.create`
  whose metadata the `response.created` echoes). Each is cancelled by its id.
- A response the device cancelled (barge-in, reply timeout) or whose session is gone
  (link drop) is *cancelled*: its late audio deltas are dropped, its late `response.done`
  and function calls are ignored. The ids are kept in a bounded table (O(1) membership).
- Tool calls are tracked by `call_id`; they may answer in any order and after their
  response is done. The follow-up `response.create` goes out exactly once per response
  that made calls, when it is done AND every call of it has its output sent. A barge-in,
  a reply timeout or a link drop cancels every call still running: its output is dropped.
- The machine hears `ResponseFinished` when a response is done, except when its answer is
  still to come (it made calls and said nothing yet) or it is an announcement that said
  nothing (a user turn's THINKING must not end with it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from pivox.core.events import (
    CallId,
    FunctionCallOutput,
    ResponseCancel,
    ResponseCreate,
    ResponseId,
)
from pivox.core.machine import AudioStarted, ResponseFinished

log = logging.getLogger("pivox.responses")

Origin = Literal["turn", "announcement"]
"""Who asked for a response: the user's turn, or pivox itself (no user turn waits on it)."""

Action = ResponseCancel | FunctionCallOutput | ResponseCreate | ResponseFinished
"""What the daemon carries out: client events to send, or the machine's input to feed."""

MAX_ENDED = 64
"""Ended (done or cancelled) response ids remembered; late deltas come within seconds."""
MAX_OPEN = 8
"""Responses tracked at once (open, or done and waiting for tool outputs)."""
MAX_CALLS = 16
"""Tool calls one response may make; further calls are refused (not run)."""


@dataclass(slots=True)
class _Response:
    """One response the tracker follows until it ends and its tools have answered."""

    origin: Origin
    done: bool = False
    audible: bool = False
    """Some of its audio was queued for the speaker."""
    calls: set[CallId] = field(default_factory=set)
    """Calls made and not answered yet."""
    called: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BargeIn:
    """What a barge-in cancels: `cancels` to send (the audible one first) and `audible`,
    the response the speaker was playing (its item is truncated at what was heard)."""

    cancels: tuple[ResponseCancel, ...]
    audible: ResponseId | None


class ResponseTracker:
    """The device's view of the server's responses and of the tool calls they made."""

    def __init__(self) -> None:
        self._responses: dict[ResponseId, _Response] = {}
        """Open responses and done ones waiting for tool outputs, oldest first."""
        self._open: dict[ResponseId, None] = {}
        """Responses between `response.created` and `response.done`, in order (a set)."""
        self._ended: dict[ResponseId, bool] = {}
        """Done or cancelled responses (True: cancelled), oldest first, at most MAX_ENDED."""
        self._calls: dict[CallId, ResponseId] = {}
        """Running calls and the response that made each."""
        self.playing: ResponseId | None = None
        """The response whose audio the speaker plays, until it has played out."""

    @property
    def live(self) -> ResponseId | None:
        """The newest response the server is still generating."""
        return next(reversed(self._open), None)

    def cancelled(self, response_id: str) -> bool:
        """True if `response_id` was cancelled: its audio must not play. O(1)."""
        return self._ended.get(ResponseId(response_id), False)

    # ------------------------------------------------------------------ server events

    def created(self, response_id: ResponseId, origin: Origin = "turn") -> None:
        """`response.created`: the response is open (an ended id stays ended)."""
        if response_id in self._ended or response_id in self._responses:
            return
        self._track(response_id, _Response(origin))
        self._open[response_id] = None

    def audio_arrived(self, response_id: str) -> AudioStarted | None:
        """Audio of `response_id` was queued for the speaker; the first of a response that
        is not already playing starts SPEAKING (returns the machine's input)."""
        rid = ResponseId(response_id)
        if self.cancelled(rid):
            return None
        if (response := self._responses.get(rid)) is not None:
            response.audible = True
        if self.playing == rid:
            return None
        self.playing = rid
        return AudioStarted(response_id=rid)

    def done(self, response_id: ResponseId, status: str) -> list[Action]:
        """`response.done`: the follow-up if its calls have all answered, and the machine's
        `ResponseFinished` unless an answer is still to come."""
        self._open.pop(response_id, None)
        if response_id in self._ended:
            return []
        response = self._responses.get(response_id) or _Response("turn")
        response.done = True
        out: list[Action] = []
        if response.audible or not (response.called or response.origin == "announcement"):
            out.append(ResponseFinished(response_id=response_id, status=status))
        return self._settle(response_id, response) + out

    def call_started(self, response_id: ResponseId, call_id: CallId) -> bool:
        """A function call's arguments are complete: True if the tool should run now (not
        for an ended response, a call id already seen, or past MAX_CALLS)."""
        if response_id in self._ended or call_id in self._calls:
            return False
        response = self._responses.get(response_id)
        if response is None:  # no `response.created` seen: follow it from here
            self.created(response_id)
            response = self._responses[response_id]
        if len(response.calls) >= MAX_CALLS:
            log.warning("response %s made more than %d tool calls; not running %s",
                        response_id, MAX_CALLS, call_id,
                        extra={"RESPONSE_ID": response_id, "PIVOX_EVENT": "too_many_calls"})
            return False
        response.calls.add(call_id)
        response.called = True
        self._calls[call_id] = response_id
        return True

    def call_output(self, call_id: CallId, output: str) -> list[Action]:
        """A tool answered: its output to send, then the follow-up if it was the last one
        of a done response. Nothing when the call was cancelled meanwhile."""
        response_id = self._calls.pop(call_id, None)
        if response_id is None:
            return []
        response = self._responses[response_id]
        response.calls.discard(call_id)
        sent: list[Action] = [FunctionCallOutput(call_id=call_id, output=output)]
        return sent + self._settle(response_id, response)

    # ------------------------------------------------------------------ the device

    def barge_in(self) -> BargeIn | None:
        """The user interrupted: cancel what plays and every open response, drop the
        running calls. None when nothing was playing or open (nothing to tell the server)."""
        playing = self.playing
        targets = [playing] if playing is not None else []
        targets += [rid for rid in reversed(self._open) if rid != playing]
        self._cancel(targets)
        if not targets:
            return None
        return BargeIn(cancels=tuple(ResponseCancel(response_id=rid) for rid in targets),
                       audible=playing)

    def timed_out(self) -> list[Action]:
        """No reply came in time: cancel the open responses and the running calls; the
        machine hears a `ResponseFinished` with status "timeout"."""
        targets = list(reversed(self._open))
        self._cancel(targets)
        cancels: list[Action] = [ResponseCancel(response_id=rid) for rid in targets]
        live = targets[0] if targets else ResponseId("")
        return [*cancels, ResponseFinished(response_id=live, status="timeout")]

    def link_dropped(self) -> None:
        """The session is gone: whatever it was saying or running is cancelled."""
        self._cancel([self.playing] if self.playing is not None else [])

    def played_out(self) -> None:
        """The speaker has played the reply out (the turn is over)."""
        self.playing = None

    # ------------------------------------------------------------------ internals

    def _settle(self, response_id: ResponseId, response: _Response) -> list[Action]:
        """End a done response once every call of it has its output sent; if it made calls,
        `response.create`: the model answers their outputs."""
        if not response.done or response.calls:
            return []
        self._end(response_id, cancelled=False)
        return [ResponseCreate()] if response.called else []

    def _cancel(self, targets: list[ResponseId]) -> None:
        """Cancel `targets` and every tracked response (open, or waiting for outputs): their
        running calls are dropped."""
        for rid in [*targets, *self._responses]:
            self._end(rid, cancelled=True)

    def _track(self, response_id: ResponseId, response: _Response) -> None:
        self._responses[response_id] = response
        if len(self._responses) > MAX_OPEN:  # a server that never ends its responses
            oldest = next(iter(self._responses))
            log.warning("more than %d responses open; forgetting %s", MAX_OPEN, oldest,
                        extra={"RESPONSE_ID": oldest, "PIVOX_EVENT": "too_many_responses"})
            self._end(oldest, cancelled=True)

    def _end(self, response_id: ResponseId, *, cancelled: bool) -> None:
        """Forget `response_id` as open and its calls; remember it ended (bounded)."""
        self._open.pop(response_id, None)
        response = self._responses.pop(response_id, None)
        if response is not None:
            for call_id in response.calls:
                self._calls.pop(call_id, None)
        ended = self._ended
        ended[response_id] = ended.pop(response_id, False) or cancelled  # now the newest
        if cancelled and self.playing == response_id:
            self.playing = None  # a cancelled response is never the one playing
        if len(ended) > MAX_ENDED:
            del ended[next(iter(ended))]
