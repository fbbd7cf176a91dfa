"""Waits that always end and never lose a cancel.

`asyncio.wait_for` can swallow a cancel that arrives as the awaited thing completes (Python
3.11, gh-86296): a loop around it never stops, and a stop that awaits that task waits for ever.
These use `asyncio.timeout` and `asyncio.wait`, and ruff bans `asyncio.wait_for` in the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Collection
from typing import Any

log = logging.getLogger("pivox.waits")


async def wait_set(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait at most `timeout` s (None: for ever) for `event`; True when it is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()


async def cancel_all(tasks: Collection[asyncio.Task[Any]],
                     timeout: float) -> list[BaseException]:
    """Cancel `tasks`, wait up to `timeout` s for them to end, and return the errors they ended
    with (a cancel is none); each one still running is logged with where it waits and left."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return []
    done, stuck = await asyncio.wait(tasks, timeout=timeout)
    for task in stuck:
        log.error("task %s did not end within %.1f s of its cancel; left behind at %s",
                  task.get_name(), timeout, where(task), extra={"PIVOX_EVENT": "task_stuck"})
    return [error for task in done if not task.cancelled()
            if (error := task.exception()) is not None]


def where(task: asyncio.Task[Any]) -> str:
    """The awaits `task` is suspended in, innermost first: `function (file:line) < ...`."""
    return " < ".join(f"{f.f_code.co_name} ({os.path.basename(f.f_code.co_filename)}:"
                      f"{f.f_lineno})" for f in reversed(task.get_stack())) or "its start"
