"""The announcement queue: bounded, waits for rest, tells its response apart (pure)."""

from __future__ import annotations

from pivox.core.announcements import (
    ANSWER_GRACE_S,
    PENDING_S,
    SAY_INSTRUCTIONS,
    Announcements,
)
from pivox.core.events import OutOfBandResponse, ResponseCreate, UserText


def test_the_queue_is_bounded_and_fifo() -> None:
    queue = Announcements(limit=2)
    assert queue.push("say", "one") is not None and queue.push("say", "two") is not None
    assert queue.push("say", "three") is None
    first = queue.next_due(0.0, at_rest=True, busy=False)
    assert first is not None and first.text == "one" and len(queue) == 1


def test_nothing_starts_unless_at_rest_and_idle() -> None:
    queue = Announcements()
    queue.push("say", "hello")
    assert queue.next_due(0.0, at_rest=False, busy=False) is None  # a user's turn
    assert queue.next_due(0.0, at_rest=True, busy=True) is None  # a reply plays
    assert queue.next_due(0.0, at_rest=True, busy=False) is not None


def test_one_at_a_time_until_its_response_ends() -> None:
    queue = Announcements()
    queue.push("say", "a")
    queue.push("say", "b")
    assert queue.next_due(0.0, at_rest=True, busy=False) is not None
    assert queue.next_due(0.1, at_rest=True, busy=False) is None  # sent, not created yet
    assert queue.created("resp_1", {"metadata": {"pivox": "announcement"}}, 0.2, 5.0)
    assert queue.speaking == "resp_1"
    assert queue.next_due(0.3, at_rest=True, busy=False) is None
    queue.finished("resp_1")
    assert queue.next_due(0.4, at_rest=True, busy=False) is not None


def test_a_lost_one_frees_the_queue_after_a_while() -> None:
    queue = Announcements()
    queue.push("say", "a")
    queue.push("say", "b")
    queue.next_due(0.0, at_rest=True, busy=False)
    assert queue.next_due(PENDING_S - 0.1, at_rest=True, busy=False) is None
    entry = queue.next_due(PENDING_S + 0.1, at_rest=True, busy=False)
    assert entry is not None and entry.text == "b"


def test_a_users_response_is_not_taken_for_the_announcement() -> None:
    queue = Announcements()
    queue.push("say", "a")
    queue.next_due(0.0, at_rest=True, busy=False)
    assert not queue.created("resp_user", {"metadata": None}, 0.1, 5.0)  # OpenAI, untagged
    assert queue.speaking is None
    assert queue.created("resp_ours", {"metadata": {"pivox": "announcement"}}, 0.2, 5.0)


def test_without_metadata_the_pending_announcement_is_the_next_response() -> None:
    """Gemini echoes no metadata: the response after the announcement's turn is its."""
    queue = Announcements()
    queue.push("say", "a")
    queue.next_due(0.0, at_rest=True, busy=False)
    assert queue.created("resp_1", {}, 0.1, 5.0)
    assert queue.speaking == "resp_1"


def test_client_events() -> None:
    queue = Announcements()
    say = queue.push("say", "Door open")
    ask = queue.push("ask", "Pills?")
    assert say is not None and ask is not None
    (oob,) = say.client_events()
    assert isinstance(oob, OutOfBandResponse) and oob.text == "Door open"
    assert oob.instructions == SAY_INSTRUCTIONS and oob.metadata["pivox"] == "announcement"
    text, create = ask.client_events()
    assert isinstance(text, UserText) and text.text.endswith("Pills?")
    assert isinstance(create, ResponseCreate)


def test_the_answer_is_the_next_transcript_within_the_window() -> None:
    queue = Announcements()
    queue.push("ask", "Pills?")
    queue.next_due(0.0, at_rest=True, busy=False)
    assert not queue.created("resp_q", {"metadata": None}, 1.0, 5.0)
    assert queue.answer(3.0)
    assert not queue.answer(3.5)  # once
    queue.push("ask", "Again?")
    queue.next_due(10.0, at_rest=True, busy=False)
    queue.created("resp_q2", {"metadata": None}, 10.0, 5.0)
    assert not queue.answer(10.0 + 5.0 + ANSWER_GRACE_S + 1)  # too late


def test_drop_all_hands_back_what_was_queued() -> None:
    queue = Announcements()
    queue.push("say", "a")
    queue.push("ask", "b")
    assert [e.text for e in queue.drop_all()] == ["a", "b"]
    assert len(queue) == 0
