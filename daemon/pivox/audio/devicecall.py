"""Blocking sound-device calls off the event loop: each on its own thread, with a deadline.

PortAudio's open, start, stop, abort, close and terminate can block for ever when the sound
server stalls (Pa_StopStream waits for a callback thread that polls a device that never
wakes). `DeviceCalls.run` runs such a call on a fresh daemon thread and waits for it on the
loop; a call that misses its deadline raises `DeviceError` naming the device, is logged once
and is abandoned: its thread is left to finish (or never), nothing waits for it again, and
the device object it holds is never touched again (a retry opens a new one, with a fresh
PortAudio instance). Daemon threads, not an executor: `asyncio.run` and the interpreter
join an executor's threads at exit, and a wedged one would hold the process for ever.
`hung` lists the calls whose thread is still inside the device (abandoned, or cut short
by stop()), so the process can skip the interpreter's own teardown (`os._exit`) rather than
wait on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pivox.core.errors import DeviceError

log = logging.getLogger("pivox.devicecall")

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """One device call and the thread that makes it."""

    device: str
    what: str
    since: float
    thread: threading.Thread


class DeviceCalls:
    """Runs blocking device calls on daemon threads, each bounded by a deadline on the loop."""

    def __init__(self) -> None:
        self._calls: list[Call] = []

    @property
    def hung(self) -> list[Call]:
        """Calls whose thread has not returned yet, nobody waiting for it any more."""
        self._calls = [c for c in self._calls if c.thread.is_alive()]
        return list(self._calls)

    async def run(self, fn: Callable[[], T], *, device: str, what: str, timeout: float) -> T:
        """`fn()` on a new thread; its result, its exception, or DeviceError after `timeout` s."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(ok: bool, value: object) -> None:
            if future.done():
                return
            if ok:
                future.set_result(value)  # type: ignore[arg-type]
            else:
                assert isinstance(value, BaseException)
                future.set_exception(value)

        def work() -> None:
            try:
                outcome: tuple[bool, object] = (True, fn())
            except BaseException as exc:  # handed to the loop: the caller decides
                outcome = (False, exc)
            # RuntimeError: the loop closed meanwhile, nobody waits any more
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, *outcome)

        thread = threading.Thread(target=work, name=f"pivox-{what}", daemon=True)
        call = Call(device=device, what=what, since=time.monotonic(), thread=thread)
        thread.start()
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(future)
        except asyncio.CancelledError:
            self._calls.append(call)  # stop() gave up on it: still counts if it never returns
            future.cancel()
            raise
        except TimeoutError:
            future.cancel()  # a late result is dropped
            self._calls.append(call)
            log.error("%s of %s did not return within %.1f s; abandoned (a new PortAudio "
                      "instance is used from now on)", what, device, timeout,
                      extra={"PIVOX_EVENT": "device_call_abandoned", "PIVOX_DEVICE": device})
            raise DeviceError(f"{what} did not return within {timeout:.1f} s",
                              device=device) from None
