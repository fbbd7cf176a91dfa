"""How pivox knows the wall clock is synchronised, and which boot this is."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pivox.host import clock
from pivox.host.clock import boot_id, clock_synced


def test_timesyncd_s_flag_file_says_synchronised(tmp_path: Path) -> None:
    (tmp_path / "synchronized").touch()
    assert clock_synced(tmp_path) is True


@pytest.mark.parametrize(("state", "synced"), [(clock.TIME_ERROR, False), (0, True), (1, True)])
def test_else_the_kernel_s_sta_unsync_decides(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: int, synced: bool) -> None:
    monkeypatch.setattr(clock, "_adjtimex", lambda: state)
    assert clock_synced(tmp_path / "absent") is synced


def test_where_adjtimex_is_refused_timesyncd_without_the_flag_is_unsynchronised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "_adjtimex", lambda: None)  # ProtectClock=yes: EPERM
    assert clock_synced(tmp_path) is False
    assert clock_synced(tmp_path / "absent") is None  # cannot know: the clock is trusted


def test_the_real_adjtimex_answers_a_clock_state() -> None:
    state = clock._adjtimex()
    assert state is None or 0 <= state <= clock.TIME_ERROR


def test_asking_again_starts_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timers ask once a second while one is set: finding libc (`ldconfig -p`) happens once."""
    first = clock._adjtimex()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a process was started")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    assert [clock._adjtimex() for _ in range(3)] == [first] * 3


def test_boot_id(tmp_path: Path) -> None:
    assert len(boot_id()) == 36
    (tmp_path / "id").write_text("abc\n")
    assert boot_id(tmp_path / "id") == "abc"
    assert boot_id(tmp_path / "none") == ""
