"""Fault specs of the local server: parsing, query strings, when each fires."""

from __future__ import annotations

import pytest

from pivox.server.faults import Fault, FaultPlan, faults_from_query, parse_fault

CASES = [
    ("close:1011:after=40", Fault(kind="close", code=1011, after=40)),
    ("close:1000", Fault(kind="close", code=1000)),
    ("drop:deltas=3", Fault(kind="drop", deltas=3)),
    ("stall:2.5:after=1", Fault(kind="stall", seconds=2.5, after=1)),
    ("oversized:3000000", Fault(kind="oversized", size=3_000_000)),
    ("stale:2", Fault(kind="stale", count=2)),
    ("malformed", Fault(kind="malformed")),
    ("bad_base64:deltas=1", Fault(kind="bad_base64", deltas=1)),
    ("unknown:after=2", Fault(kind="unknown", after=2)),
    ("auth", Fault(kind="auth")),
]


@pytest.mark.parametrize(("spec", "fault"), CASES)
def test_parse(spec: str, fault: Fault) -> None:
    assert parse_fault(spec) == fault


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("explode", "fault kind 'explode': expected one of"),
        ("drop:5", "unexpected argument '5'"),
        ("close:1011:when=3", "unknown key 'when'"),
        ("close:abc", "expected numbers as values"),
        ("stall:-1", "expected values >= 0"),
    ],
)
def test_parse_rejects_with_reason(spec: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        parse_fault(spec)


def test_query_string_names_faults_and_ignores_the_rest() -> None:
    query = "model=gpt-realtime&fault=close:1008:after=3,stale:1&fault=drop&x=1"
    assert faults_from_query(query) == (
        Fault(kind="close", code=1008, after=3),
        Fault(kind="stale", count=1),
        Fault(kind="drop"),
    )
    assert faults_from_query("model=x") == ()


def test_plan_fires_each_fault_once_when_both_counts_are_reached() -> None:
    plan = FaultPlan([Fault(kind="close", after=2, deltas=1), Fault(kind="malformed")])
    assert plan.due() == [Fault(kind="malformed")]
    plan.note_sent(is_audio_delta=False)
    plan.note_sent(is_audio_delta=False)
    assert plan.due() == []
    plan.note_sent(is_audio_delta=True)
    assert plan.due() == [Fault(kind="close", after=2, deltas=1)]
    plan.note_sent(is_audio_delta=True)
    assert plan.due() == []


def test_stale_is_counted_not_fired() -> None:
    plan = FaultPlan([Fault(kind="stale", count=2), Fault(kind="stale", count=1)])
    assert plan.stale_count == 3
    assert plan.due() == []
