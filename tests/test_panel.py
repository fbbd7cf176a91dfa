"""Panel.wait: the tick's sleep, long while quiet, ended by a state change or a button edge."""

from __future__ import annotations

import asyncio
import time

from pivox.config import load_config
from pivox.core.machine import State
from pivox.host.panel import IDLE_TICK_S, QUIET_TICK_S, Panel


def config() -> object:
    return load_config(None, ["button.enabled=true"])


async def waited(panel: Panel, state: State, quiet: bool, *, show_after: float | None = None,
                 ) -> float:
    """Seconds `panel.wait` took; with `show_after`, a state is shown that long into it."""
    if show_after is not None:
        asyncio.get_running_loop().call_later(show_after, panel.show, State.LISTENING)
    start = time.monotonic()
    await panel.wait(state, quiet)
    return time.monotonic() - start


async def test_quiet_waits_long_busy_waits_the_interval() -> None:
    panel = Panel(config())  # type: ignore[arg-type]
    assert QUIET_TICK_S * 0.9 <= await waited(panel, State.IDLE, True) < QUIET_TICK_S + 0.3
    assert await waited(panel, State.IDLE, False) < IDLE_TICK_S + 0.2


async def test_a_state_change_or_a_button_edge_ends_the_quiet_wait() -> None:
    edges: list[bool] = []
    panel = Panel(config())  # type: ignore[arg-type]

    def open_button(_config: object, on_edge: object) -> object:
        asyncio.get_running_loop().call_later(0.05, on_edge, True, 0.0)  # type: ignore[arg-type]
        return None

    panel.open(config(), open_button, None, lambda pressed, at: edges.append(pressed),  # type: ignore[arg-type]
               State.IDLE)
    assert await waited(panel, State.IDLE, True) < QUIET_TICK_S / 2
    assert edges == [True]
    assert await waited(panel, State.IDLE, True, show_after=0.05) < QUIET_TICK_S / 2


async def test_the_quiet_wait_never_exceeds_the_watchdog_interval() -> None:
    panel = Panel(config(), watchdog_s=0.1)  # type: ignore[arg-type]
    assert await waited(panel, State.IDLE, True) < 0.1 + 0.2
