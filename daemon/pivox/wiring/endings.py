"""How a reply ends: played out (the speaker drained), given up (no word from the server in
time) or interrupted (barge-in: silenced, cancelled, truncated at what was heard)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from pivox.core import events as ev
from pivox.core import machine as m
from pivox.core.ring import BYTES_PER_MS
from pivox.wiring.parts import DaemonParts

log = logging.getLogger("pivox.daemon")  # the daemon's lines, moved with their code


class ReplyEndings:
    """Ends the turn's reply on the daemon's behalf and reports the turn."""

    def __init__(self, daemon: DaemonParts, *, cancel_calls: Callable[[], None],
                 is_announcement: Callable[[str], bool]) -> None:
        self.d = daemon
        self._cancel_calls = cancel_calls
        """Stops the remote tool calls in flight (`ToolCalls.cancel_remote`)."""
        self._is_announcement = is_announcement
        """True for an announcement's response, which is in no conversation to truncate."""

    def check_drained(self, now: float) -> None:
        """Tick: the reply is done and the speaker has played all of it: the turn ends."""
        d = self.d
        d.turns.heard(now, d.ring.played)
        if (d.machine.state is m.State.SPEAKING and d.responses.live is None
                and d.ring.available == 0 and not d.playback.pending):
            d.feed(m.Drained())
            if d.machine.state is not m.State.SPEAKING:
                self._finish_turn()

    def check_timeout(self, now: float, waiting_since: float) -> None:
        """THINKING with no word from the server for too long: give the reply up."""
        d = self.d
        timeout = d.config.session.response_timeout_s
        if d.machine.state is not m.State.THINKING or now - waiting_since < timeout:
            return
        log.warning("no reply after %.0f s of server silence; giving it up", timeout,
                    extra=d.log_fields(RESPONSE_ID=d.responses.live,
                                       PIVOX_EVENT="reply_timeout"))
        d.turns.finish()
        self._cancel_calls()
        d.carry_out(d.responses.timed_out())

    def _finish_turn(self) -> None:
        d = self.d
        turn = d.turns.finish()
        d.responses.played_out()
        if turn is None or turn.response_id is None:
            return
        underruns = d.ring.underruns - turn.underruns_at_start
        d.stats["turns"] += 1
        text, fields = turn.report(underruns)
        log.info("%s", text, extra=d.log_fields(**fields))
        for item in turn.items:
            d.ring.forget(item)

    def barge_in(self) -> None:
        """Silence the speaker now, cancel the reply and tell the server what was heard."""
        d = self.d
        item_id = d.ring.current_item
        d.playback.clear()
        self._cancel_calls()
        cut = d.responses.barge_in()
        if cut is None:
            return
        for cancel in cut.cancels:
            d.link.send(cancel)
        d.turns.finish()
        if cut.audible is not None:  # flushed off the loop, then truncated at what was heard
            announced = self._is_announcement(cut.audible)  # in no conversation: no cut
            d.audio.silence(None if announced else item_id, partial(self._truncate, cut.audible))

    def _truncate(self, response_id: str, item_id: str, heard: int) -> None:
        """Tell the server the user heard only `heard` bytes of the interrupted item."""
        played_ms = heard // BYTES_PER_MS
        self.d.link.send(ev.ItemTruncate(item_id=ev.ItemId(item_id), content_index=0,
                                         audio_end_ms=played_ms))
        log.info("barge-in: cancelled %s after %d ms of %s", response_id, played_ms, item_id,
                 extra=self.d.log_fields(RESPONSE_ID=response_id, ITEM_ID=item_id,
                                         PIVOX_EVENT="barge_in"))
