"""Debian bookworm roots of other architectures (arm64, armhf) under qemu-user, for install.sh.

The roots are `nspawn.root_tarball`s (cached per architecture and package list under
`$PIVOX_CACHE`), built by debootstrap through binfmt_misc and qemu-user-static. A test
extracts one, copies the checkout into it and runs commands in a chroot that reaches the
package registries through the host's network. pip's cache and apt's downloaded packages
live in the same cache place and are bind-mounted into every root: a second run downloads
nothing and builds no wheel again.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.system import nspawn

BINFMT = Path("/proc/sys/fs/binfmt_misc")
QEMU = {"arm64": "qemu-aarch64", "armhf": "qemu-arm"}
"""binfmt_misc entry (qemu-user-static's name) per Debian architecture."""
PACKAGES = ("python3", "ca-certificates", "espeak-ng")
"""What a fresh Raspberry Pi OS Lite has that install.sh relies on (python3; ca-certificates
for pip's https), plus espeak-ng, the voice of `pivox demo`'s spoken question. Everything
else comes from install.sh."""
CHECKOUT = "/home/pi/pivox"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def binfmt_ready(arch: str) -> bool:
    """True when this kernel runs `arch` binaries through qemu-user; mounts binfmt_misc and
    enables qemu-user-static's entry first if they are installed but not active."""
    entry = BINFMT / QEMU[arch]
    if not entry.exists() and shutil.which("update-binfmts"):
        if not (BINFMT / "status").exists():
            subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
                           capture_output=True, check=False)
        subprocess.run(["update-binfmts", "--enable", QEMU[arch]], capture_output=True,
                       check=False)
    return entry.exists() and entry.read_text().startswith("enabled")


def inside(root: Path, path: str) -> Path:
    """`path` of the root at `root`, as a host path; refuses one whose symlinks lead out of
    the root (an absolute link in the root points into the host: /usr/lib/python3.11/
    sitecustomize.py -> /etc/python3.11/sitecustomize.py is one)."""
    target = root / path.lstrip("/")
    if not target.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{path} leads out of the root {root}: {target.resolve()}")
    return target


def copy_checkout(dest: Path) -> None:
    """The files git tracks, as they are in the work tree (uncommitted edits included)."""
    listed = subprocess.run(["git", "-C", str(nspawn.PROJECT), "ls-files", "-z"],
                            capture_output=True, check=True).stdout
    for name in listed.decode().split("\0"):
        source = nspawn.PROJECT / name
        if name and source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


@dataclass
class Result:
    """One command run in the root: its exit code and everything it printed."""

    rc: int
    out: str


@dataclass
class Root:
    """An extracted root of `arch` with the checkout in it; `run` executes in a chroot."""

    path: Path
    arch: str

    def run(self, command: str, timeout: float, env: dict[str, str] | None = None) -> Result:
        """`bash -c command` in the chroot, with a clean environment (`env` added)."""
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        argv = ["chroot", str(self.path), "env", "-i", f"PATH={PATH}", "HOME=/root",
                "LANG=C.UTF-8", f"PIP_CERT={CA_BUNDLE}", *extra, "bash", "-c", command]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            out = proc.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return Result(-9, proc.communicate()[0] + f"\n(killed after {timeout:.0f} s)")
        return Result(proc.returncode, out)


def build_roots(arches: tuple[str, ...]) -> None:
    """Build the missing cached roots of `arches` side by side (debootstrap under qemu waits
    on the network and the disk much of the time: two take little longer than one)."""
    with concurrent.futures.ThreadPoolExecutor(len(arches)) as pool:
        for done in [pool.submit(nspawn.root_tarball, PACKAGES, arch) for arch in arches]:
            done.result()


@contextlib.contextmanager
def root(arch: str, where: Path) -> Iterator[Root]:
    """A fresh root of `arch` at `where/root-ARCH`, the checkout at CHECKOUT, /proc, /sys, /dev
    and the download caches mounted; everything unmounted afterwards.

    The root lives on a tmpfs: under qemu-user a 32-bit program's readdir() fails with
    EOVERFLOW on ext4's 64-bit directory offsets (espeak-ng then finds no voice), which a
    real Pi never sees. It trusts what this machine trusts (its CA bundle, for pip's https).
    PIVOX_KEEP_ROOT=1 leaves it mounted for a post-mortem.
    """
    tarball = nspawn.root_tarball(PACKAGES, arch)
    # one root at a time per cache: apt in two roots would fight over the shared archives
    lock = (nspawn.cache_dir() / "emulated.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    path = where / f"root-{arch}"
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6g", "tmpfs", str(path)], check=True)
    mounted: list[Path] = [path]
    try:
        subprocess.run(["tar", "--numeric-owner", "-C", str(path), "-xpf", str(tarball)],
                       check=True)
        copy_checkout(path / CHECKOUT.lstrip("/"))
        shutil.copy2("/etc/resolv.conf", inside(path, "/etc/resolv.conf"))
        shutil.copy2(CA_BUNDLE, inside(path, str(CA_BUNDLE)))
        binds = {
            nspawn.cache_dir() / "pip": path / "root/.cache/pip",
            nspawn.cache_dir() / "apt-archives": path / "var/cache/apt/archives",
            Path("/dev"): path / "dev",
            Path("/sys"): path / "sys",
        }
        for source, target in binds.items():
            source.mkdir(parents=True, exist_ok=True)
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
            mounted.append(target)
        subprocess.run(["mount", "-t", "proc", "proc", str(path / "proc")], check=True)
        mounted.append(path / "proc")
        yield Root(path, arch)
    finally:
        if not os.environ.get("PIVOX_KEEP_ROOT"):
            for target in reversed(mounted):
                subprocess.run(["umount", "-l", str(target)], check=False)
        lock.close()
