"""pivox.host.waits: a cancel is never lost, and a task that ignores one never holds a stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from pivox.host.waits import cancel_all, wait_set


async def retry_loop(event: asyncio.Event, rounds: list[int]) -> None:
    """The shape of the MCP retry loop and the timer loop: wait for a nudge, again and again."""
    while True:
        rounds.append(1)
        event.clear()
        await wait_set(event, 10)


async def test_a_cancel_that_arrives_as_the_event_is_set_ends_the_loop() -> None:
    # asyncio.wait_for(event.wait(), 10) returns True here on Python 3.11 (gh-86296): the loop
    # goes round again and a stop that awaits it waits for ever
    event, rounds = asyncio.Event(), []
    task = asyncio.create_task(retry_loop(event, rounds))
    await asyncio.sleep(0.01)
    event.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1)
    assert done and task.cancelled() and rounds == [1]


@pytest.mark.parametrize(("timeout", "set_after", "expected"), [
    (0.05, None, False), (None, 0.01, True), (1.0, 0.01, True),
])
async def test_wait_set_says_whether_the_event_was_set(
        timeout: float | None, set_after: float | None, expected: bool) -> None:
    event = asyncio.Event()
    if set_after is not None:
        asyncio.get_running_loop().call_later(set_after, event.set)
    assert await wait_set(event, timeout) is expected


async def test_cancel_all_names_a_task_that_ignores_its_cancel_and_returns(
        caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    caplog.set_level(logging.ERROR, "pivox.waits")
    task = asyncio.create_task(stubborn(), name="stubborn")
    polite = asyncio.create_task(asyncio.sleep(10), name="polite")
    await asyncio.sleep(0)
    assert await cancel_all([task, polite], 0.1) == []
    assert polite.cancelled() and not task.done()
    (record,) = caplog.records
    assert record.PIVOX_EVENT == "task_stuck"
    assert record.getMessage().startswith("task stubborn did not end within 0.1 s of its "
                                          "cancel; left behind at stubborn (test_waits.py:")
    release.set()
    await task


async def test_cancel_all_returns_the_errors_tasks_ended_with() -> None:
    async def fails() -> None:
        raise ValueError("broken")

    failed = asyncio.create_task(fails())
    running = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)
    (error,) = await cancel_all([failed, running], 1.0)
    assert isinstance(error, ValueError) and running.cancelled()
    assert await cancel_all([], 1.0) == []
