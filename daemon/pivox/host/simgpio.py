"""A simulated button and LED, with the interfaces of `pivox.host.gpio`, for `pivox demo`
and machines without GPIO.

`SimButton` is pressed by the keyboard (each Enter toggles pressed / released; read from a
terminal or a pipe, without blocking the loop) or by a script of `(seconds after start,
pressed)` pairs. `SimLed` writes one line per pattern change ("LED: thinking -> pulse 1.0
Hz") through the `emit` it is given (`print` for the demo's own output).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from pivox.core.led import LedPattern

log = logging.getLogger("pivox.simgpio")


class SimButton:
    """A button pressed by Enter or by a script; reports `on_edge(pressed, at)` on the loop.

    Built inside the running asyncio loop. `at` is `clock()` when the edge happened.
    """

    def __init__(
        self,
        on_edge: Callable[[bool, float], None],
        *,
        keyboard: bool = False,
        script: Sequence[tuple[float, bool]] = (),
        stdin: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_edge = on_edge
        self._clock = clock
        self._pressed = False
        self._fd: int | None = None
        self._timers = [self._loop.call_later(t, self._set, p) for t, p in script]
        if keyboard:
            self._listen((stdin or sys.stdin).fileno())

    @property
    def pressed(self) -> bool:
        """The simulated level."""
        return self._pressed

    def sample(self) -> None:
        """Nothing to recover: a simulated edge is never lost (here for `gpio.Button` parity)."""

    def close(self) -> None:
        """Cancel the rest of the script and stop reading the keyboard."""
        for timer in self._timers:
            timer.cancel()
        self._stop_listening()

    def _listen(self, fd: int) -> None:
        mode = os.fstat(fd).st_mode
        if not (os.isatty(fd) or stat.S_ISFIFO(mode)):
            log.warning("no keyboard button: stdin is neither a terminal nor a pipe")
            return
        self._fd = fd
        self._loop.add_reader(fd, self._on_input)

    def _stop_listening(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._fd = None

    def _on_input(self) -> None:
        assert self._fd is not None
        data = os.read(self._fd, 4096)
        if not data:
            self._stop_listening()
            return
        for _ in range(data.count(b"\n")):
            self._set(not self._pressed)

    def _set(self, pressed: bool) -> None:
        if pressed != self._pressed:
            self._pressed = pressed
            self._on_edge(pressed, self._clock())


class SimLed:
    """An LED that reports each pattern change as one line through `emit`."""

    def __init__(self, emit: Callable[[str], object] = log.info) -> None:
        self._emit = emit
        self._shown: tuple[str, LedPattern] | None = None

    def show(self, pattern: LedPattern, state: str = "") -> None:
        """Show `pattern` for device state `state`; emits a line when either changed."""
        if self._shown != (state, pattern):
            self._shown = (state, pattern)
            self._emit(f"LED: {state} -> {pattern}" if state else f"LED: {pattern}")

    def tick(self, now: float) -> None:
        """Nothing to animate (here for `gpio.Led` parity)."""

    def close(self) -> None:
        """Nothing to release (here for `gpio.Led` parity)."""
