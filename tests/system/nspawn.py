"""A Debian bookworm container booted by systemd-nspawn, with pivox and its checks staged.

The debootstrap root is cached as a tarball keyed on the suite and package list, under
`$PIVOX_CACHE` (default ~/.cache/pivox). pivox reaches the container as wheels built on
the host (the container has no network); install.sh installs them with --wheelhouse.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
IMAGE = Path(__file__).resolve().parent / "image"
SUITE = "bookworm"
# What install.sh needs from apt (so it installs nothing itself), plus systemd to boot.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-venv",
    "libportaudio2",
    "python3-pyaudio",
    "python3-systemd",
    "procps",
    "libasound2",
)
TEST_DIR = "pivox-test"
SYSTEM_TEST_TIMEOUT_S = 3600
"""pytest-timeout's limit for a system test (the suite's is 300 s): on a fresh machine the first
one builds its roots (about 20 min), and each step has a subprocess timeout of its own."""
RATE = 24_000
FRAME_BYTES = 960


def cache_dir() -> Path:
    return Path(os.environ.get("PIVOX_CACHE") or Path.home() / ".cache" / "pivox")


def mirror() -> str:
    """The Debian mirror this machine's apt uses (never a hard-coded host)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    for line in Path("/etc/apt/sources.list").read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["deb"] and len(parts) > 1:
            return parts[1]
    raise RuntimeError("no Debian mirror found in the apt sources")


def root_tarball(packages: tuple[str, ...] = PACKAGES, arch: str | None = None) -> Path:
    """The cached debootstrap root with `packages`, built on first use (about 45 s; for
    another `arch`, under qemu-user through binfmt, about 5 minutes)."""
    parts = (SUITE, *sorted(packages)) if arch is None else (SUITE, arch, *sorted(packages))
    key = hashlib.sha256(" ".join(parts).encode()).hexdigest()[:16]
    tarball = cache_dir() / f"rootfs-{SUITE}-{f'{arch}-' if arch else ''}{key}.tar"
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tarball.parent) as scratch:
        root = Path(scratch) / "root"
        _debootstrap(packages, arch, root)
        partial = Path(scratch) / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True
        )
        partial.rename(tarball)
    return tarball


def _debootstrap(packages: tuple[str, ...], arch: str | None, root: Path) -> None:
    """debootstrap into `root`, once more after a failure (a first build of two roots side by
    side failed here once, exit status 1, and the next build passed); the second failure is
    raised with the end of debootstrap's log."""
    argv = ["debootstrap", "--variant=minbase", *([f"--arch={arch}"] if arch else []),
            f"--include={','.join(packages)}", SUITE, str(root), mirror()]
    for attempt in (1, 2):
        run = subprocess.run(argv, capture_output=True, text=True)
        if run.returncode == 0:
            return
        log = root / "debootstrap" / "debootstrap.log"
        detail = (log.read_text(errors="replace") if log.exists() else run.stdout + run.stderr)
        shutil.rmtree(root, ignore_errors=True)
        if attempt == 2:
            raise RuntimeError(f"debootstrap {arch or 'native'} failed twice (exit status "
                               f"{run.returncode}):\n{detail[-3000:]}")


def extract(tarball: Path, root: Path) -> None:
    root.mkdir(parents=True)
    subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-xpf", str(tarball)], check=True)


def build_wheelhouse(dest: Path) -> None:
    """pivox, its dependencies and the extras install.sh chooses here, as wheels built with
    the host's pip."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(dest),
         f"{PROJECT}[wake,aec]"],
        check=True,
        capture_output=True,
    )


def mic_pcm(seconds_quiet: float = 3.0, seconds_loud: float = 1.2) -> bytes:
    """What the container's mic hears, looped: silence, then a loud burst the VAD takes
    for speech. 24 kHz s16le mono, a whole number of 20 ms frames."""
    quiet = bytes(int(RATE * seconds_quiet) * 2)
    loud = b"".join(
        struct.pack("<h", int(12_000 * math.sin(2 * math.pi * 220 * i / RATE)))
        for i in range(int(RATE * seconds_loud))
    )
    pcm = quiet + loud
    return pcm + bytes(-len(pcm) % FRAME_BYTES)


def stage(root: Path, api_key: str) -> None:
    """Put the installer's inputs, the wheels, the test units and the checks into `root`."""
    test = root / TEST_DIR
    src = test / "src"
    for path in ("install.sh", "systemd/pivox.service", "config/pivox.toml"):
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT / path, src / path)
    build_wheelhouse(test / "wheels")
    for name in ("check.py", "audioclock.py"):
        shutil.copy2(IMAGE / name, test / name)
    (test / "mic.raw").write_bytes(mic_pcm())
    (test / "api_key").write_text(api_key + "\n")
    (test / "server.env").write_text(f"PIVOX_SERVER_API_KEY={api_key}\n")
    shutil.copy2(IMAGE / "asound.conf", root / "etc/asound.conf")
    units = root / "etc/systemd/system"
    for unit in ("pivox-check.service", "pivox-serve.service", "pivox-audioclock.service"):
        shutil.copy2(IMAGE / unit, units / unit)
    wants = units / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / "pivox-check.service").symlink_to("/etc/systemd/system/pivox-check.service")
    # persistent journal, read from the host after shutdown
    (root / "var/log/journal").mkdir(parents=True, exist_ok=True)
    (root / "etc/hostname").write_text("pivox-test\n")


def boot(root: Path, machine: str, timeout: float) -> str:
    """Boot `root` until the checks power it off; its console output.

    On timeout the container is asked to power off (SIGTERM to nspawn), then killed with
    every process nspawn started, so no container outlives the test.
    """
    nspawn = subprocess.Popen(
        [
            "systemd-nspawn",
            "--register=no",
            "--keep-unit",
            "--private-network",
            "--console=pipe",
            f"--machine={machine}",
            "-D",
            str(root),
            "-b",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        return nspawn.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        nspawn.terminate()
        try:
            return nspawn.communicate(timeout=30)[0] + "\n(timed out, powered off)"
        except subprocess.TimeoutExpired:
            for pid in [*_descendants(nspawn.pid), nspawn.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return nspawn.communicate()[0] + "\n(timed out, killed)"


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, parents before children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                # the fields after the ")" closing the command name: state, ppid, ...
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def journal(root: Path) -> list[dict[str, Any]]:
    """Every entry of the container's persistent journal, oldest first."""
    out = subprocess.run(
        ["journalctl", "-D", str(root / "var/log/journal"), "-o", "json", "--no-pager"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]
