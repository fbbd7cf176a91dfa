"""TurnTracker: the latency figures that become a turn's journal fields."""

from __future__ import annotations

from pivox.core.turns import TurnTracker


def test_a_turn_measures_first_delta_and_first_audible_frame() -> None:
    tracker = TurnTracker()
    turn = tracker.start(10.0, underruns=2)
    tracker.audio_arrived(10.25, "resp_1", "item_1")
    tracker.audio_arrived(10.30, "resp_1", "item_1")
    played = {"item_1": 0}
    tracker.heard(10.27, played.get)  # nothing of it played yet
    played["item_1"] = 960
    tracker.heard(10.29, played.get)
    tracker.heard(10.50, played.get)
    assert tracker.finish() is turn
    assert (turn.turn_id, turn.response_id, turn.items) == (1, "resp_1", ["item_1"])
    assert (turn.latency_ms(), turn.audible_ms()) == (250, 290)
    assert turn.underruns_at_start == 2
    assert tracker.current is None


def test_turns_are_numbered_and_a_reply_without_a_turn_is_ignored() -> None:
    tracker = TurnTracker()
    tracker.audio_arrived(1.0, "resp_0", "item_0")
    tracker.heard(1.0, lambda item: 960)
    assert tracker.finish() is None
    assert tracker.start(2.0, 0).turn_id == 1
    assert tracker.start(3.0, 0).turn_id == 2
    turn = tracker.finish()
    assert turn is not None and (turn.latency_ms(), turn.audible_ms()) == (None, None)


def test_a_second_item_of_the_reply_is_kept() -> None:
    tracker = TurnTracker()
    tracker.start(0.0, 0)
    tracker.audio_arrived(0.1, "resp_1", "item_1")
    tracker.audio_arrived(0.2, "resp_1", "item_2")
    turn = tracker.finish()
    assert turn is not None and turn.items == ["item_1", "item_2"]


def test_the_report_of_a_turn_names_its_figures() -> None:
    tracker = TurnTracker()
    tracker.start(1.0, underruns=3)
    tracker.audio_arrived(1.2, "resp_1", "item_1")
    tracker.heard(1.3, lambda item: 48)
    turn = tracker.finish()
    assert turn is not None
    text, fields = turn.report(underruns=1)
    assert text == "turn 1 done: first audio after 200 ms, audible after 300 ms, 1 underruns"
    assert fields == {"TURN_ID": 1, "RESPONSE_ID": "resp_1", "ITEM_ID": "item_1",
                      "PIVOX_EVENT": "turn_done", "PIVOX_LATENCY_MS": 200,
                      "PIVOX_AUDIBLE_MS": 300, "PIVOX_UNDERRUNS": 1}
