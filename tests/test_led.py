"""LED patterns: the state table, the config parser, brightness over time."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivox.core.led import (
    DEFAULT_PATTERNS,
    DIM_LEVEL,
    LedPattern,
    brightness,
    led_table,
    parse_pattern,
)
from pivox.core.machine import State


def test_every_state_has_a_pattern_a_single_led_can_tell_apart() -> None:
    assert set(DEFAULT_PATTERNS) == set(State)
    looks = {(p.kind, p.rate_hz) for p in DEFAULT_PATTERNS.values()}
    assert len(looks) == len(State)


def test_the_default_for_thinking_reads_well() -> None:
    assert str(DEFAULT_PATTERNS[State.THINKING]).startswith("pulse 1.0 Hz")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("off", LedPattern(kind="off")),
        ("dim", LedPattern(kind="dim")),
        ("solid", LedPattern(kind="solid")),
        ("blink:2", LedPattern(kind="blink", rate_hz=2.0)),
        ("blink", LedPattern(kind="blink", rate_hz=1.0)),
        ("pulse:0.5", LedPattern(kind="pulse", rate_hz=0.5)),
        ("pulse:.5@#FF8800", LedPattern(kind="pulse", rate_hz=0.5, color=(255, 136, 0))),
        ("solid@#00ff00", LedPattern(kind="solid", color=(0, 255, 0))),
    ],
)
def test_parse_pattern(text: str, expected: LedPattern) -> None:
    assert parse_pattern(text) == expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("blinky", "blinky"),
        ("blink:fast", "'fast'"),
        ("blink:0", "'0'"),
        ("pulse:-1", "'-1'"),
        ("pulse:nan", "'nan'"),
        ("solid:2", "solid takes no rate"),
        ("solid@red", "'red'"),
        ("dim@#12345", "'#12345'"),
        ("", "''"),
    ],
)
def test_parse_pattern_errors_name_the_bad_value(text: str, named: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_pattern(text)
    assert named in str(info.value) and repr(text) in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"kind": "strobe"}, {"kind": "blink"}, {"kind": "solid", "rate_hz": 1.0},
     {"kind": "solid", "color": (0, 0, 256)}, {"kind": "pulse", "rate_hz": math.inf}],
)
def test_invalid_patterns_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LedPattern(**kwargs)


def test_steady_brightness() -> None:
    for t in (0.0, 0.3, 7.9):
        assert brightness(LedPattern(kind="off"), t) == 0.0
        assert brightness(LedPattern(kind="dim"), t) == DIM_LEVEL
        assert brightness(LedPattern(kind="solid"), t) == 1.0


def test_blink_is_on_the_first_half_of_each_period() -> None:
    blink = LedPattern(kind="blink", rate_hz=2.0)
    assert [brightness(blink, t) for t in (0.0, 0.2, 0.26, 0.49, 0.5, 0.8)] == [
        1.0, 1.0, 0.0, 0.0, 1.0, 0.0]


def test_pulse_breathes_from_dark() -> None:
    pulse = LedPattern(kind="pulse", rate_hz=1.0)
    assert brightness(pulse, 0.0) == pytest.approx(0.0)
    assert brightness(pulse, 0.25) == pytest.approx(0.5)
    assert brightness(pulse, 0.5) == pytest.approx(1.0)
    assert brightness(pulse, 1.0) == pytest.approx(0.0, abs=1e-9)


@given(st.sampled_from(list(DEFAULT_PATTERNS.values())), st.floats(0, 1e6))
def test_brightness_stays_within_0_and_1(pattern: LedPattern, t: float) -> None:
    assert 0.0 <= brightness(pattern, t) <= 1.0


@given(st.text(alphabet="offdimsolidblinkpulse:.0123456789@#abcdefABCDEF-+ex", max_size=24))
def test_parse_pattern_accepts_or_raises_value_error(text: str) -> None:
    try:
        pattern = parse_pattern(text)
    except ValueError:
        return
    assert 0.0 <= brightness(pattern, 0.3) <= 1.0


def test_the_config_overrides_entries_of_the_table() -> None:
    table = led_table({"idle": "off", "thinking": "blink:3@#ff0000"})
    assert table[State.IDLE] == LedPattern(kind="off")
    assert table[State.THINKING] == LedPattern(kind="blink", rate_hz=3.0, color=(255, 0, 0))
    assert {s: p for s, p in table.items() if s not in (State.IDLE, State.THINKING)} == {
        s: p for s, p in DEFAULT_PATTERNS.items() if s not in (State.IDLE, State.THINKING)}
