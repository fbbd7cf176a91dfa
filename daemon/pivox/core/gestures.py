"""Button gestures from raw edges: debounce, press/release, tap, double tap, long press.

Pure: the caller passes the time (monotonic seconds). `edge(pressed, now)` takes every
level change the GPIO layer reports (repeats of the same level are harmless);
`poll(now)`, called every ~20 ms, reports what needs no edge: a long press while held and
a level that settled after bounce.

Debouncing accepts a change at once when the line had been quiet for `debounce_ms`
before it (a press reaches the machine at its first edge: latency matters), and
otherwise only once the line has stayed at the new level for `debounce_ms`. A burst of
bounce therefore yields at most one press and one release.

What is emitted, in order: `ButtonDown` at the press; `LongPress` once, while held, after
`long_press_ms`; at the release `ButtonUp(held_ms, short)` where `short` means held less
than `min_hold_ms`, then for a short press (not a long one) `Tap`, or `DoubleTap` when
this press began within `double_tap_ms` of the previous tap's release. The first press of
a double tap is reported as a Tap: a tap acts at once rather than waiting to see whether
a second one follows.
"""

from __future__ import annotations

import math

from pivox.core.machine import ButtonDown, ButtonUp, DoubleTap, LongPress, Tap

Gesture = ButtonDown | ButtonUp | Tap | DoubleTap | LongPress


class ButtonGestures:
    """Turns debounced button edges into the machine's button inputs."""

    def __init__(
        self,
        debounce_ms: float = 30,
        min_hold_ms: float = 250,
        double_tap_ms: float = 400,
        long_press_ms: float | None = 2000,
    ) -> None:
        self._debounce = debounce_ms / 1e3
        self._min_hold_ms = min_hold_ms
        self._double_tap = double_tap_ms / 1e3
        self._long_press = None if long_press_ms is None else long_press_ms / 1e3
        self._raw = False
        self._raw_at = -math.inf
        self._level = False
        self._pressed_at = 0.0
        self._long_sent = False
        self._last_tap_at: float | None = None

    @property
    def pressed(self) -> bool:
        """The debounced level."""
        return self._level

    @property
    def busy(self) -> bool:
        """Held, or an edge still settling: `poll` has a gesture to time."""
        return self._level or self._raw != self._level

    def edge(self, pressed: bool, now: float) -> list[Gesture]:
        """The line is now `pressed` (True) or released; returns the gestures this completes."""
        out = self.poll(now)
        if pressed == self._raw:
            return out
        quiet = now - self._raw_at >= self._debounce
        self._raw, self._raw_at = pressed, now
        if quiet and pressed != self._level:
            out += self._accept(now)
        return out

    def poll(self, now: float) -> list[Gesture]:
        """Gestures due by time `now` without a new edge."""
        if self._raw != self._level and now - self._raw_at >= self._debounce:
            return self._accept(self._raw_at)
        if self._level and self._long_due(now):
            self._long_sent = True
            return [LongPress()]
        return []

    def _long_due(self, now: float) -> bool:
        return (
            self._long_press is not None
            and not self._long_sent
            and now - self._pressed_at >= self._long_press
        )

    def _accept(self, at: float) -> list[Gesture]:
        """The debounced level changes to the raw level at time `at`."""
        self._level = self._raw
        if self._level:
            self._pressed_at, self._long_sent = at, False
            return [ButtonDown()]
        out: list[Gesture] = []
        if self._long_due(at):
            self._long_sent = True
            out.append(LongPress())
        held_ms = (at - self._pressed_at) * 1e3
        short = held_ms < self._min_hold_ms
        out.append(ButtonUp(held_ms=held_ms, short=short))
        if short and not self._long_sent:
            last = self._last_tap_at
            if last is not None and self._pressed_at - last <= self._double_tap:
                out.append(DoubleTap())
                self._last_tap_at = None
            else:
                out.append(Tap())
                self._last_tap_at = at
        return out
