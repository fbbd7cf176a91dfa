"""LED patterns: what each device state looks like, and the brightness of a pattern over time.

Pure. `DEFAULT_PATTERNS` is the one state -> pattern table; the config overrides entries
with the text form `parse_pattern` reads: `off`, `dim`, `solid`, `blink:<hz>`,
`pulse:<hz>`, each optionally followed by `@#rrggbb` (the colour on an RGB LED; a
single-colour LED ignores it). Every default differs in kind or rate, so a single-colour
LED tells all states apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from pivox.core.machine import State

Kind = Literal["off", "dim", "solid", "blink", "pulse"]
KINDS: tuple[Kind, ...] = get_args(Kind)
_RATED: tuple[Kind, ...] = ("blink", "pulse")

DIM_LEVEL = 0.1
"""Brightness of `dim`, as a fraction of full."""

Color = tuple[int, int, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class LedPattern:
    """A pattern; `rate_hz` is the blink or pulse rate (0 for the steady kinds)."""

    kind: Kind
    rate_hz: float = 0.0
    color: Color | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"LED pattern kind must be one of {', '.join(KINDS)}, "
                             f"got {self.kind!r}")
        rated = self.kind in _RATED
        if rated and not (self.rate_hz > 0 and math.isfinite(self.rate_hz)):
            raise ValueError(f"{self.kind} needs a rate > 0 Hz, got {self.rate_hz!r}")
        if not rated and self.rate_hz != 0:
            raise ValueError(f"{self.kind} takes no rate, got {self.rate_hz!r}")
        if self.color is not None and (
            len(self.color) != 3 or any(not 0 <= c <= 255 for c in self.color)
        ):
            raise ValueError(f"colour must be three values 0..255, got {self.color!r}")

    def __str__(self) -> str:
        rate = f" {self.rate_hz:.1f} Hz" if self.kind in _RATED else ""
        color = "" if self.color is None else " #{:02x}{:02x}{:02x}".format(*self.color)
        return f"{self.kind}{rate}{color}"


def _p(kind: Kind, rate_hz: float, color: Color) -> LedPattern:
    return LedPattern(kind=kind, rate_hz=rate_hz, color=color)


DEFAULT_PATTERNS: dict[State, LedPattern] = {
    State.BOOTING: _p("blink", 4.0, (255, 255, 255)),
    State.CONNECTING: _p("blink", 1.0, (0, 0, 255)),
    State.IDLE: _p("dim", 0, (255, 255, 255)),
    State.LISTENING: _p("solid", 0, (0, 255, 0)),
    State.USER_SPEAKING: _p("pulse", 2.0, (0, 255, 0)),
    State.THINKING: _p("pulse", 1.0, (255, 160, 0)),
    State.SPEAKING: _p("pulse", 0.5, (0, 255, 255)),
    State.MUTED: _p("blink", 0.5, (255, 0, 0)),
    State.OFFLINE: _p("blink", 2.0, (255, 0, 0)),
    State.AUTH_ERROR: _p("blink", 3.0, (255, 0, 255)),
    State.AUDIO_ERROR: _p("blink", 5.0, (255, 64, 0)),
    State.RINGING: _p("pulse", 3.0, (255, 255, 0)),
}
"""The LED pattern of every device state: the one table."""

_SYNTAX = re.compile(r"(?P<kind>[a-z]+)(?::(?P<rate>[^@]*))?(?:@(?P<color>.*))?")


def parse_pattern(text: str) -> LedPattern:
    """Read `kind[:rate_hz][@#rrggbb]`; raises ValueError naming the bad value.

    A blink or pulse without a rate runs at 1 Hz.
    """
    match = _SYNTAX.fullmatch(text.strip())
    if match is None or match["kind"] not in KINDS:
        raise ValueError(f"LED pattern {text!r}: expected one of {', '.join(KINDS)}, "
                         "then :<hz> for blink and pulse, then optionally @#rrggbb")
    kind: Kind = match["kind"]  # checked against KINDS above
    rate = 0.0
    if match["rate"] is not None:
        if kind not in _RATED:
            raise ValueError(f"LED pattern {text!r}: {kind} takes no rate")
        try:
            rate = float(match["rate"])
        except ValueError:
            raise ValueError(f"LED pattern {text!r}: rate {match['rate']!r} is not a number") \
                from None
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"LED pattern {text!r}: rate must be > 0 Hz, got {match['rate']!r}")
    elif kind in _RATED:
        rate = 1.0
    color = None
    if match["color"] is not None:
        if re.fullmatch(r"#[0-9a-fA-F]{6}", match["color"]) is None:
            raise ValueError(f"LED pattern {text!r}: colour {match['color']!r} is not #rrggbb")
        value = int(match["color"][1:], 16)
        color = (value >> 16, (value >> 8) & 0xFF, value & 0xFF)
    return LedPattern(kind=kind, rate_hz=rate, color=color)


def led_table(overrides: Mapping[str, str]) -> dict[State, LedPattern]:
    """The state -> pattern table with the config's `overrides` (state name -> text) applied."""
    table = dict(DEFAULT_PATTERNS)
    for state_name, text in overrides.items():
        table[State(state_name)] = parse_pattern(text)
    return table


def brightness(pattern: LedPattern, t: float) -> float:
    """Brightness 0..1 of `pattern` at `t` seconds after it was shown (for a PWM duty cycle).

    A blink is on for the first half of each period; a pulse breathes from dark (a raised
    cosine), so both start at a defined phase when the pattern is shown.
    """
    if pattern.kind == "off":
        return 0.0
    if pattern.kind == "dim":
        return DIM_LEVEL
    if pattern.kind == "solid":
        return 1.0
    phase = (t * pattern.rate_hz) % 1.0
    if pattern.kind == "blink":
        return 1.0 if phase < 0.5 else 0.0
    return 0.5 - 0.5 * math.cos(2 * math.pi * phase)
