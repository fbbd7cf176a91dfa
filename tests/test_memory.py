"""The glibc mmap threshold pin: large blocks go back to the kernel when freed."""

from __future__ import annotations

from pathlib import Path

from pivox.host.memory import pin_mmap_threshold


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_freed_multi_megabyte_buffers_leave_rss() -> None:
    assert pin_mmap_threshold()
    baseline = rss_kib()
    kept = []
    for _ in range(20):
        block = bytearray(4 * 1024 * 1024)  # a frame-sized block, touched
        block[::4096] = b"\x01" * len(block[::4096])
        kept.append(bytearray(1000))  # a small allocation after it pins the heap's top
        del block
    assert rss_kib() - baseline < 2048  # unpinned, this process grew by 4 MB here
