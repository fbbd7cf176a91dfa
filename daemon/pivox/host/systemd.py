"""sd_notify(3) for the daemon: READY, STATUS, WATCHDOG, RELOADING and STOPPING.

The notify protocol is one datagram of `KEY=value` lines to the AF_UNIX socket named by
`$NOTIFY_SOCKET` (a leading `@` means the abstract namespace). It is spoken here directly,
rather than through `systemd.daemon.notify`, because libsystemd reads the process
environment while a `Notifier` honours the mapping it is given. Without `NOTIFY_SOCKET`
every method is a no-op, so the daemon calls them unconditionally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("pivox.systemd")


class Notifier:
    """Sends READY, STATUS, WATCHDOG, RELOADING and STOPPING to the service manager."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self.enabled = bool(address)
        self._watchdog_usec = _watchdog_usec(environ)
        self._socket: socket.socket | None = None
        self._pinged_at: float | None = None

    def ready(self, status: str) -> None:
        """Tell systemd start-up is complete (`READY=1`), with a first status line."""
        self._send(f"READY=1\nSTATUS={_one_line(status)}")

    def status(self, text: str) -> None:
        """Set the one-line status shown by `systemctl status`."""
        self._send(f"STATUS={_one_line(text)}")

    def reloading(self) -> None:
        """Announce a config reload; call `ready()` when it is applied or rejected.

        MONOTONIC_USEC is what systemd 253+ requires with RELOADING=1; 252 ignores it.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        """Announce a clean shutdown has begun (`STOPPING=1`)."""
        self._send("STOPPING=1")

    def watchdog_ping(self) -> None:
        """Reset the service watchdog (`WATCHDOG=1`); only the caller knows we are alive."""
        if self._watchdog_usec is not None:
            self._send("WATCHDOG=1")

    def watchdog(self, now: float, alive: Callable[[float], bool]) -> None:
        """Ping the watchdog once per `watchdog_interval()` while `alive(now)` says the device
        works (`now`: monotonic seconds); a device that stops working stops the pings."""
        interval = self.watchdog_interval()
        if interval is None or (self._pinged_at is not None and now - self._pinged_at < interval):
            return
        if alive(now):
            self.watchdog_ping()
            self._pinged_at = now

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half of `WatchdogSec=`), or None if unwatched."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    def close(self) -> None:
        """Close the notify socket; later messages reopen it."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _send(self, message: str) -> None:
        if not self.enabled:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                # Never block the event loop: a manager that does not read its queue gets
                # the message dropped (the next status or ping carries the news again).
                self._socket.setblocking(False)
            self._socket.sendto(message.encode(), self._address)
        except BlockingIOError:
            log.debug("sd_notify queue full, dropped %s", message.split("=", 1)[0])
        except OSError as exc:
            # The manager going away must not take the speaker down with it.
            log.warning("sd_notify to %s failed: %s", self._address.lstrip("\0"), exc)


def install_signals(loop: asyncio.AbstractEventLoop, stop: Callable[[], None],
                    reload: Callable[[], None]) -> None:
    """The service's signals: SIGTERM and SIGINT stop, SIGHUP (`systemctl reload`) reloads.
    Where the loop cannot take them (not the main thread, Windows) they stay as they were."""
    for sig, handler in ((signal.SIGTERM, stop), (signal.SIGINT, stop), (signal.SIGHUP, reload)):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, handler)


def _watchdog_usec(environ: Mapping[str, str]) -> int | None:
    """WATCHDOG_USEC when the watchdog is meant for this process, per sd_watchdog_enabled(3)."""
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec if usec > 0 else None


def _one_line(text: str) -> str:
    """A status must stay on one line: a newline would start a new notify assignment."""
    return " ".join(text.split())
