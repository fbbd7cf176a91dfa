"""A small state file written atomically: temp file, fsync, rename, fsync of the directory.

Blocking calls: the daemon runs `write_atomic` off the event loop. `read_state` returns the
bytes (None when there is no file); `set_aside` renames a file that could not be used so it
stays for inspection and the next write starts clean.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

STATE_FILE = "timers.json"


def state_dir(configured: str, environ: dict[str, str] | None = None) -> Path:
    """`configured`, else $STATE_DIRECTORY (systemd's StateDirectory=), else
    $XDG_STATE_HOME/pivox, else ~/.local/state/pivox."""
    env = os.environ if environ is None else environ
    if configured:
        return Path(configured).expanduser()
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]) / "pivox"
    return Path.home() / ".local" / "state" / "pivox"


def read_state(path: Path, limit: int) -> bytes | None:
    """The file's bytes (None: no file); OSError when unreadable, ValueError past `limit`."""
    try:
        with open(path, "rb") as file:
            data = file.read(limit + 1)
    except FileNotFoundError:
        return None
    if len(data) > limit:
        raise ValueError(f"longer than {limit} bytes")
    return data


def set_aside(path: Path) -> Path:
    """Rename `path` to `<name>.corrupt-<unix time>` beside it; return the new path."""
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    os.replace(path, aside)
    return aside


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so a crash at any moment leaves the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on a directory
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
