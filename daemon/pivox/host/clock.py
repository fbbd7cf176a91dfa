"""The host's clocks: is the wall clock synchronised, and which boot is this.

`clock_synced()` answers True, False or None (cannot know), in this order:
1. `/run/systemd/timesync/synchronized` exists: True (systemd-timesyncd creates it at its
   first synchronisation; it survives the daemon's `ProtectClock=yes`);
2. the kernel's `adjtimex(2)` read-only (modes 0): False while it returns TIME_ERROR, i.e.
   `STA_UNSYNC` is set — no NTP daemon has disciplined the clock since boot — else True;
   under `ProtectClock=yes` (the pivox unit) seccomp refuses the call, so:
3. `/run/systemd/timesync/` exists without the flag file: False (timesyncd runs and has
   not synchronised yet);
4. otherwise None: pivox trusts the wall clock as it reads (see `pivox.core.schedule`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from pathlib import Path

log = logging.getLogger("pivox.clock")

TIMESYNC_DIR = Path("/run/systemd/timesync")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
TIME_ERROR = 5
"""adjtimex's return value while the clock is not synchronised."""
_TIMEX_BYTES = 512
"""Room for `struct timex` (208 bytes on 64-bit Linux) with margin; zeroed: modes = 0."""


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, found once: `find_library` runs `ldconfig -p` in a subprocess."""
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _adjtimex() -> int | None:
    """adjtimex(2) with modes 0 (reads only): the clock state, or None when refused."""
    try:
        state = int(_libc().adjtimex(ctypes.create_string_buffer(_TIMEX_BYTES)))
    except (OSError, AttributeError):
        return None
    return None if state < 0 else state


def clock_synced(timesync_dir: Path = TIMESYNC_DIR) -> bool | None:
    """Whether the wall clock is known to be synchronised (None: cannot know)."""
    if (timesync_dir / "synchronized").exists():
        return True
    state = _adjtimex()
    if state is not None:
        return state != TIME_ERROR
    return False if timesync_dir.is_dir() else None


def boot_id(path: Path = BOOT_ID) -> str:
    """This boot's id (a restart on the same boot keeps the monotonic clock); empty if unknown."""
    try:
        return path.read_text(encoding="ascii").strip()[:64]
    except (OSError, UnicodeDecodeError):
        return ""
