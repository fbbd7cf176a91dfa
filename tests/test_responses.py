"""ResponseTracker: which response is live and audible, and when tool outputs get a follow-up."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from pivox.core.events import (
    CallId,
    FunctionCallOutput,
    ResponseCancel,
    ResponseCreate,
    ResponseId,
)
from pivox.core.machine import AudioStarted, ResponseFinished
from pivox.core.responses import MAX_CALLS, MAX_ENDED, MAX_OPEN, ResponseTracker

R1, R2, R3 = ResponseId("resp_1"), ResponseId("resp_2"), ResponseId("resp_3")
C1, C2 = CallId("call_1"), CallId("call_2")
FOLLOW_UP = ResponseCreate()


def test_a_plain_reply_is_live_then_audible_then_finished() -> None:
    tracker = ResponseTracker()
    tracker.created(R1)
    assert tracker.live == R1
    assert tracker.audio_arrived(R1) == AudioStarted(response_id=R1)
    assert tracker.audio_arrived(R1) is None  # already playing: no second start
    assert tracker.done(R1, "completed") == [ResponseFinished(response_id=R1, status="completed")]
    assert tracker.live is None and tracker.playing == R1
    tracker.played_out()
    assert tracker.playing is None


def test_barge_in_cancels_what_plays_and_what_is_open_and_their_late_audio_is_dropped() -> None:
    tracker = ResponseTracker()
    tracker.created(R1)
    tracker.audio_arrived(R1)
    tracker.done(R1, "completed")
    tracker.created(R2)  # a follow-up, generating while R1 still plays
    cut = tracker.barge_in()
    assert cut is not None and cut.audible == R1
    assert cut.cancels == (ResponseCancel(response_id=R1), ResponseCancel(response_id=R2))
    assert tracker.cancelled(R1) and tracker.cancelled(R2)
    assert tracker.audio_arrived(R2) is None and tracker.playing is None
    assert tracker.live is None
    assert tracker.done(R2, "cancelled") == []  # its late done ends nothing more
    assert tracker.barge_in() is None  # nothing left to cancel


def test_a_cancelled_id_created_again_stays_cancelled() -> None:
    tracker = ResponseTracker()
    tracker.created(R1)
    tracker.barge_in()
    tracker.created(R1)
    assert tracker.live is None and tracker.cancelled(R1)


def test_a_tool_call_gets_its_output_then_one_follow_up_and_thinking_goes_on() -> None:
    tracker = ResponseTracker()
    tracker.created(R1)
    assert tracker.call_started(R1, C1)
    assert tracker.call_output(C1, "{}") == [FunctionCallOutput(call_id=C1, output="{}")]
    # no audio: the spoken answer is the follow-up's, so the machine hears no ResponseFinished
    assert tracker.done(R1, "completed") == [FOLLOW_UP]
    assert not tracker.call_started(R1, C2)  # a call of an ended response is not run


def test_async_calls_answer_in_any_order_and_the_last_one_after_done_sends_the_follow_up() -> None:
    tracker = ResponseTracker()
    tracker.created(R1)
    assert tracker.call_started(R1, C1) and tracker.call_started(R1, C2)
    assert tracker.done(R1, "completed") == []  # both still running
    assert tracker.call_output(C2, "b") == [FunctionCallOutput(call_id=C2, output="b")]
    assert tracker.call_output(C1, "a") == [FunctionCallOutput(call_id=C1, output="a"), FOLLOW_UP]
    assert tracker.call_output(C1, "a") == []  # answered already


def test_a_reply_that_spoke_and_called_a_tool_finishes_and_is_followed_up() -> None:
    tracker = ResponseTracker()
    tracker.created(R1)
    tracker.audio_arrived(R1)
    tracker.call_started(R1, C1)
    assert tracker.done(R1, "completed") == [ResponseFinished(response_id=R1, status="completed")]
    assert tracker.call_output(C1, "x")[-1] == FOLLOW_UP


def test_barge_in_and_link_drop_drop_the_outputs_of_running_calls() -> None:
    for interrupt in ("barge_in", "link_dropped"):
        tracker = ResponseTracker()
        tracker.created(R1)
        tracker.call_started(R1, C1)
        tracker.done(R1, "completed")  # waits for C1 (an MCP call running off the loop)
        getattr(tracker, interrupt)()
        assert tracker.call_output(C1, "late") == []
        assert tracker.cancelled(R1)


def test_a_reply_timeout_cancels_the_live_response_and_its_calls() -> None:
    tracker = ResponseTracker()
    tracker.created(R1)
    tracker.call_started(R1, C1)
    assert tracker.timed_out() == [ResponseCancel(response_id=R1),
                                   ResponseFinished(response_id=R1, status="timeout")]
    assert tracker.call_output(C1, "late") == [] and tracker.cancelled(R1)
    assert tracker.timed_out() == [ResponseFinished(response_id=ResponseId(""), status="timeout")]


def test_a_running_call_id_is_not_run_twice_and_calls_are_bounded() -> None:
    tracker = ResponseTracker()
    tracker.created(R1)
    assert tracker.call_started(R1, C1) and not tracker.call_started(R1, C1)
    accepted = [tracker.call_started(R1, CallId(f"c{i}")) for i in range(MAX_CALLS + 3)]
    assert accepted.count(True) == MAX_CALLS - 1


def test_an_announcement_that_says_nothing_does_not_end_a_turn_and_barge_in_cancels_it() -> None:
    tracker = ResponseTracker()
    tracker.created(R1)  # the user's turn, thinking
    tracker.created(R2, origin="announcement")
    assert tracker.done(R2, "completed") == []
    tracker.created(R3, origin="announcement")
    assert tracker.audio_arrived(R3) == AudioStarted(response_id=R3)
    cut = tracker.barge_in()
    assert cut is not None and cut.audible == R3
    assert [c.response_id for c in cut.cancels] == [R3, R1]


def test_the_tables_are_bounded() -> None:
    tracker = ResponseTracker()
    for i in range(MAX_OPEN + 5):  # a server that never ends its responses
        tracker.created(ResponseId(f"r{i}"))
    assert tracker.live == ResponseId(f"r{MAX_OPEN + 4}")
    assert tracker.cancelled(ResponseId("r0"))  # forgotten: its audio would be dropped
    for i in range(MAX_ENDED * 3):
        tracker.created(ResponseId(f"x{i}"))
        tracker.barge_in()
    remembered = [tracker.cancelled(ResponseId(f"x{i}")) for i in range(MAX_ENDED * 3)]
    assert remembered == [False] * (MAX_ENDED * 2) + [True] * MAX_ENDED  # the newest ones
    assert tracker.live is None


# --------------------------------------------------------------------------- any sequence

STATUSES = st.sampled_from(["completed", "cancelled", "failed", "incomplete"])


class Responses(RuleBasedStateMachine):
    """Server events, tool outputs, barge-ins, link drops and reply timeouts in any order.

    The model knows only what the tracker was told and the rule of the docstring: an
    interruption cancels what is in flight (playing, open, or waiting for an output; a timeout
    spares what plays). Checked: a cancelled response never becomes audible again, the live
    one is never dropped, an output of a cancelled call is never sent, and the follow-up goes
    out exactly once per response with calls that was done, had every output sent, and was
    not cancelled, after all of that.
    """

    responses = Bundle("responses")
    calls = Bundle("calls")

    def __init__(self) -> None:
        super().__init__()
        self.tracker = ResponseTracker()
        self.count = 0
        self.order: list[ResponseId] = []
        self.done: set[ResponseId] = set()
        self.cancelled: set[ResponseId] = set()
        self.playing: ResponseId | None = None
        self.call_of: dict[CallId, ResponseId] = {}
        self.running: set[CallId] = set()
        self.accepted: dict[ResponseId, int] = {}
        self.follow_ups: dict[ResponseId, int] = {}

    def _open(self) -> list[ResponseId]:
        return [r for r in self.order if r not in self.done and r not in self.cancelled]

    def _waiting(self) -> set[ResponseId]:
        return {self.call_of[c] for c in self.running}

    def _settled(self, rid: ResponseId) -> bool:
        """Done with no call still running: the tracker has ended it."""
        return rid in self.done and rid not in self._waiting()

    def _cancel(self, rids: set[ResponseId]) -> None:
        self.cancelled |= rids
        self.running = {c for c in self.running if self.call_of[c] not in self.cancelled}
        if self.playing in self.cancelled:
            self.playing = None

    def _check_follow_ups(self, actions: list[object], rid: ResponseId) -> None:
        n = actions.count(FOLLOW_UP)
        if n:
            assert actions[-1] == FOLLOW_UP or isinstance(actions[-1], ResponseFinished)
            assert rid in self.done and rid not in self.cancelled
            assert not self._waiting() & {rid}
            self.follow_ups[rid] = self.follow_ups.get(rid, 0) + n
            assert self.follow_ups[rid] == 1
        assert not any(isinstance(a, ResponseFinished) and a.response_id in self.cancelled
                       for a in actions)

    @precondition(lambda self: self.count < MAX_OPEN - 2)
    @rule(target=responses, origin=st.sampled_from(["turn", "announcement"]))
    def created(self, origin: str) -> ResponseId:
        self.count += 1
        rid = ResponseId(f"resp_{self.count}")
        self.tracker.created(rid, "turn" if origin == "turn" else "announcement")
        self.order.append(rid)
        return rid

    @rule(rid=responses)
    def audio(self, rid: ResponseId) -> None:
        before = self.tracker.playing
        started = self.tracker.audio_arrived(rid)
        if rid in self.cancelled:
            assert self.tracker.cancelled(rid)
            assert started is None and self.tracker.playing == before
            return
        assert not self.tracker.cancelled(rid)
        assert (started is not None) == (self.playing != rid)
        self.playing = rid

    @rule(rid=responses, status=STATUSES)
    def response_done(self, rid: ResponseId, status: str) -> None:
        actions = self.tracker.done(rid, status)
        if rid in self.cancelled or self._settled(rid):
            assert actions == []
        self.done.add(rid)
        self._check_follow_ups(list(actions), rid)

    @rule(target=calls, rid=responses)
    def call_started(self, rid: ResponseId) -> CallId:
        call = CallId(f"call_{len(self.call_of)}")
        accepted = self.tracker.call_started(rid, call)
        room = sum(self.call_of[c] == rid for c in self.running) < MAX_CALLS
        assert accepted == (rid not in self.cancelled and not self._settled(rid) and room)
        self.call_of[call] = rid
        if accepted:
            self.running.add(call)
            self.accepted[rid] = self.accepted.get(rid, 0) + 1
        return call

    @rule(call=calls)
    def duplicate_call(self, call: CallId) -> None:
        if call in self.running:
            assert not self.tracker.call_started(self.call_of[call], call)

    @rule(call=consumes(calls))
    def output_sent(self, call: CallId) -> None:
        actions = self.tracker.call_output(call, "{}")
        if call not in self.running:
            assert actions == []
            return
        assert actions[0] == FunctionCallOutput(call_id=call, output="{}")
        self.running.discard(call)
        self._check_follow_ups(list(actions[1:]), self.call_of[call])

    @rule()
    def barge_in(self) -> None:
        in_flight = set(self._open()) | self._waiting() | (
            {self.playing} if self.playing else set())
        cut = self.tracker.barge_in()
        told = set() if cut is None else {c.response_id for c in cut.cancels}
        assert told == (set(self._open()) | ({self.playing} if self.playing else set()))
        assert cut is None or cut.audible == self.playing
        self._cancel(in_flight)

    @rule()
    def link_dropped(self) -> None:
        self.tracker.link_dropped()
        self._cancel(set(self._open()) | self._waiting() | (
            {self.playing} if self.playing else set()))

    @rule()
    def reply_timeout(self) -> None:
        actions = self.tracker.timed_out()
        assert {a.response_id for a in actions if isinstance(a, ResponseCancel)} == set(
            self._open())
        self._cancel(set(self._open()) | self._waiting())

    @rule()
    def played_out(self) -> None:
        self.tracker.played_out()
        self.playing = None

    @invariant()
    def the_live_one_is_audible_and_no_cancelled_one_is(self) -> None:
        open_ = self._open()
        assert self.tracker.live == (open_[-1] if open_ else None)
        if self.tracker.live is not None:
            assert not self.tracker.cancelled(self.tracker.live)
        assert all(self.tracker.cancelled(r) for r in self.cancelled)
        assert self.tracker.playing == self.playing
        assert self.playing is None or not self.tracker.cancelled(self.playing)

    @invariant()
    def every_done_response_whose_calls_all_answered_was_followed_up_once(self) -> None:
        for rid in self.done - self.cancelled:
            if self.accepted.get(rid) and rid not in self._waiting():
                assert self.follow_ups.get(rid) == 1, rid


Responses.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_any_sequence = Responses.TestCase
