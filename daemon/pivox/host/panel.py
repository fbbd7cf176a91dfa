"""The device's front panel: the button (edges -> gestures) and the LED (one pattern per state).

Either part may be absent (not configured, or its GPIO refused: logged once, the device runs
on without it). The daemon feeds the gestures to the machine and shows each new state here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from pivox.config import Config
from pivox.core.errors import DeviceError
from pivox.core.gestures import ButtonGestures, Gesture
from pivox.core.led import LedPattern, led_table
from pivox.core.machine import State

log = logging.getLogger("pivox.panel")

TICK_S = 0.02
"""Tick while the LED animates or the button is held."""
SPEAKING_TICK_S = 0.05
IDLE_TICK_S = 0.1
QUIET_TICK_S = 0.5
"""Tick while quiet: nothing is timed but the watchdog and health checks; a state change or a
button edge ends the wait at once."""
ANIMATED = ("blink", "pulse")

OnEdge = Callable[[bool, float], None]


class Indicator(Protocol):
    """An LED (real, simulated or absent)."""

    def show(self, pattern: LedPattern, state: str) -> None: ...
    def tick(self, now: float) -> None: ...
    def close(self) -> None: ...


OpenButton = Callable[[Config, OnEdge], Any]
OpenLed = Callable[[Config], Indicator]


class Panel:
    """The button's gestures and the LED's patterns, from the config."""

    def __init__(self, config: Config, watchdog_s: float | None = None) -> None:
        """`watchdog_s`: the watchdog's ping interval, which a quiet tick never exceeds."""
        self.button: Any = None
        self.led: Indicator | None = None
        self._nudge = asyncio.Event()
        """Set by a state change or a button edge: ends a quiet tick's wait."""
        self._quiet_s = min(QUIET_TICK_S, watchdog_s or QUIET_TICK_S)
        self.configure(config, led_table(config.led.patterns))

    def configure(self, config: Config, patterns: dict[State, LedPattern]) -> None:
        """Take a (re)loaded config; in push-to-talk a long hold is a long utterance, not a
        mute. `patterns`: the config's LED table (built before, where it could be refused)."""
        b = config.button
        self.gestures = ButtonGestures(
            debounce_ms=b.debounce_ms, min_hold_ms=b.min_hold_ms, double_tap_ms=b.double_tap_ms,
            long_press_ms=None if config.session.mode == "push_to_talk" else b.long_press_ms,
        )
        self.patterns = patterns

    def open(self, config: Config, open_button: OpenButton | None, open_led: OpenLed | None,
             on_edge: OnEdge, state: State) -> None:
        """Open the button and the LED the config enables; the LED starts showing `state`."""
        if open_button is not None and config.button.enabled:
            try:
                self.button = open_button(config, self._nudging(on_edge))
            except DeviceError as exc:
                log.warning("no button: %s", exc, extra={"PIVOX_EVENT": "gpio"})
        if open_led is not None and config.led.enabled:
            try:
                self.led = open_led(config)
                self.show(state)
            except DeviceError as exc:
                log.warning("no LED: %s", exc, extra={"PIVOX_EVENT": "gpio"})

    def _nudging(self, on_edge: OnEdge) -> OnEdge:
        """`on_edge` that first ends a quiet tick's wait (the gestures need timing now)."""

        def edge(pressed: bool, at: float) -> None:
            self._nudge.set()
            on_edge(pressed, at)

        return edge

    def show(self, state: State) -> None:
        """Show `state`'s pattern (a new state: a quiet tick's wait ends)."""
        self._nudge.set()
        if self.led is not None:
            self.led.show(self.patterns[state], state.value)

    def tick(self, now: float) -> list[Gesture]:
        """Sample the button, animate the LED; the gestures that needed time."""
        if self.button is not None:
            self.button.sample()
        if self.led is not None:
            self.led.tick(now)
        return self.gestures.poll(now)

    def interval(self, state: State) -> float:
        """20 ms while the LED animates or the button is busy, 50 ms while speaking, else 100."""
        if self.gestures.busy or (self.led is not None and self.patterns[
                state].kind in ANIMATED):
            return TICK_S
        return SPEAKING_TICK_S if state is State.SPEAKING else IDLE_TICK_S

    async def wait(self, state: State, quiet: bool) -> None:
        """Until the next tick: `interval`, or while `quiet` (and nothing animates) 500 ms or
        the watchdog's ping interval if shorter, ended early by a state change or an edge."""
        interval = self.interval(state)
        if not quiet or interval < IDLE_TICK_S:
            await asyncio.sleep(interval)
            return
        self._nudge.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._quiet_s):
                await self._nudge.wait()

    def close(self) -> None:
        """Turn the LED off and release both pins."""
        if self.led is not None:
            self.led.show(LedPattern(kind="off"), "stopped")
            self.led.close()
        if self.button is not None:
            self.button.close()
