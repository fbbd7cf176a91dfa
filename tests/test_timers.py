"""The timer tools and their state file: answers, refusals, persistence, a corrupt file."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from pivox.config import load_config
from pivox.core.schedule import MAX_ENTRIES, Ring
from pivox.host.statefile import STATE_FILE, state_dir
from pivox.skills.registry import TOOL_NAMES, call_tool
from pivox.skills.timers import Timers

TZ = ZoneInfo("Europe/Berlin")


class Clock:
    def __init__(self) -> None:
        self.mono = 500.0
        self.wall = dt.datetime(2026, 12, 7, 6, 59, 50, tzinfo=TZ).timestamp()
        self.synced: bool | None = True


class Device:
    """A tool host with real timers on a test clock, keeping its state in `directory`."""

    def __init__(self, directory: Path, clock: Clock | None = None, boot: str = "b1") -> None:
        self.clock = clock or Clock()
        config = load_config(None, [f"timers.state_dir={directory}",
                                    "timers.timezone=Europe/Berlin"])
        c = self.clock
        self.timers = Timers(config.timers, clock=lambda: c.mono, wall=lambda: c.wall,
                             synced=lambda: c.synced, boot=boot)

    def set_volume(self, level: int) -> None: ...
    def set_muted(self, muted: bool) -> None: ...

    def call(self, name: str, arguments: object = None) -> dict:
        return orjson.loads(call_tool(self, TOOL_NAMES, name,
                                      orjson.dumps(arguments or {}).decode()))


def test_set_list_and_cancel_timers(tmp_path: Path) -> None:
    d = Device(tmp_path)
    eggs = d.call("set_timer", {"seconds": 600, "label": "eggs"})
    assert eggs == {"id": "t1", "label": "eggs", "seconds": 600, "due": "07:09:50"}
    d.call("set_timer", {"seconds": 60.0})
    d.clock.mono += 30
    assert d.call("list_timers")["timers"] == [
        {"id": "t1", "label": "eggs", "status": "running", "left_s": 570},
        {"id": "t2", "label": "", "status": "running", "left_s": 30}]
    assert d.call("cancel_timer", {"label": "EGGS"}) == {"cancelled": [{"id": "t1",
                                                                         "label": "eggs"}]}
    assert d.call("cancel_timer", {"all": True}) == {"cancelled": [{"id": "t2", "label": ""}]}
    assert d.call("list_timers") == {"timers": []}


def test_alarms_ring_are_snoozed_and_listed(tmp_path: Path) -> None:
    d = Device(tmp_path)
    assert d.call("set_alarm", {"time": "07:00", "label": "work"})["next"] == "2026-12-07 07:00"
    d.call("set_alarm", {"time": "06:30", "days": ["mon", "tue"]})
    d.clock.mono += 10
    d.clock.wall += 10
    [ring] = d.timers.tick()
    assert isinstance(ring, Ring) and [e.id for e in ring.entries] == ["a1"]
    assert d.call("list_alarms")["alarms"][0]["status"] == "ringing"
    d.timers.dismiss("a tap")  # the wake word dismisses; "snooze 5 minutes" follows
    assert d.call("snooze", {"minutes": 5})["snoozed"] == [{"id": "a1", "label": "work"}]
    a2, a1 = d.call("list_alarms")["alarms"]
    assert (a1["status"], a1["next"]) == ("set", "2026-12-07 07:05")
    assert a2 == {"id": "a2", "label": "", "time": "06:30", "days": ["mon", "tue"],
                  "status": "set", "next": "2026-12-08 06:30"}


def test_the_33rd_is_refused_with_a_readable_output(tmp_path: Path) -> None:
    d = Device(tmp_path)
    for i in range(MAX_ENTRIES):
        assert "id" in d.call("set_timer", {"seconds": 100 + i})
    assert d.call("set_alarm", {"time": "08:00"}) == {
        "error": "at most 32 timers and alarms can be set; cancel one first"}
    assert len(d.call("list_timers")["timers"]) == MAX_ENTRIES


@pytest.mark.parametrize(("name", "arguments", "error"), [
    ("set_timer", {}, "seconds must be a whole number from 1 to 86400"),
    ("set_timer", {"seconds": 0}, "seconds must be a whole number"),
    ("set_timer", {"seconds": 86401}, "seconds must be a whole number"),
    ("set_timer", {"seconds": 1.5}, "seconds must be a whole number"),
    ("set_timer", {"seconds": "600"}, "seconds must be a whole number"),
    ("set_timer", {"seconds": True}, "seconds must be a whole number"),
    ("set_timer", {"seconds": 60, "label": "x" * 65}, "label must be text of at most 64"),
    ("set_timer", {"seconds": 60, "label": "a\nb"}, "printable"),
    ("set_timer", {"seconds": 60, "label": 7}, "label must be text"),
    ("set_timer", {"seconds": 60, "colour": "red"}, "unknown argument 'colour'"),
    ("cancel_timer", {}, "give exactly one of id, label or all"),
    ("cancel_timer", {"id": "t1", "all": True}, "give exactly one"),
    ("cancel_timer", {"all": False}, "all must be true"),
    ("cancel_timer", {"id": 3}, "id must be text"),
    ("cancel_timer", {"label": "nothing"}, "no timer with that label"),
    ("cancel_timer", {"id": "t" * 500}, "no such id"),
    ("list_timers", {"x": 1}, "unknown argument 'x'; list_timers takes no arguments"),
    ("set_alarm", {}, "time must be hh:mm"),
    ("set_alarm", {"time": "7 am"}, "time must be hh:mm"),
    ("set_alarm", {"time": "07:00", "date": "tomorrow"}, "date must be yyyy-mm-dd"),
    ("set_alarm", {"time": "07:00", "date": "2026-12-06"}, "has already passed"),
    ("set_alarm", {"time": "07:00", "days": "mon"}, "days must be a list"),
    ("set_alarm", {"time": "07:00", "days": ["someday"]}, "days must be a list"),
    ("cancel_alarm", {"id": "a9"}, "no alarm with that id"),
    ("list_alarms", {"all": True}, "unknown argument"),
    ("snooze", {"minutes": 5}, "nothing is ringing"),
    ("snooze", {"minutes": 61}, "minutes must be a whole number from 1 to 60"),
    ("snooze", {}, "minutes must be"),
    ("stop_ringing", {"now": True}, "unknown argument"),
])
def test_bad_arguments_of_every_tool_answer_a_readable_error(
        tmp_path: Path, name: str, arguments: dict, error: str) -> None:
    d = Device(tmp_path)
    answer = d.call(name, arguments)
    assert error in answer["error"].lower()
    assert len(answer["error"]) < 200
    assert d.timers.schedule.entries == ()


def test_stop_ringing_with_nothing_ringing_stops_nothing(tmp_path: Path) -> None:
    assert Device(tmp_path).call("stop_ringing") == {"stopped": []}


async def test_a_restart_resumes_with_the_downtime_counted(tmp_path: Path) -> None:
    d = Device(tmp_path)
    d.call("set_timer", {"seconds": 300, "label": "tea"})
    d.call("set_alarm", {"time": "07:30"})
    await d.timers.save()
    saved = orjson.loads((tmp_path / STATE_FILE).read_bytes())
    assert [e["id"] for e in saved["entries"]] == ["t1", "a2"]
    clock = Clock()
    clock.mono, clock.wall = 3.0, d.clock.wall + 100  # rebooted, down 100 s
    again = Device(tmp_path, clock, boot="b2")
    again.timers.load()
    assert again.call("list_timers")["timers"] == [
        {"id": "t1", "label": "tea", "status": "running", "left_s": 200}]
    assert again.call("set_timer", {"seconds": 5})["id"] == "t3"  # ids are never reused


@pytest.mark.parametrize("content", [
    b"{not json", b"\xff\xfe", orjson.dumps({"format": 1, "entries": "no"}),
    orjson.dumps([1, 2]), b"x" * 300_000,
])
def test_a_corrupt_state_file_is_set_aside_named_in_one_error_line(
        tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    d = Device(tmp_path)
    with caplog.at_level(logging.INFO, "pivox.timers"):
        d.timers.load()
    [line] = caplog.records
    assert line.levelno == logging.ERROR and str(tmp_path / STATE_FILE) in line.getMessage()
    [aside] = tmp_path.glob(f"{STATE_FILE}.corrupt-*")
    assert aside.read_bytes() == content and not (tmp_path / STATE_FILE).exists()
    assert d.call("set_timer", {"seconds": 5})["id"] == "t1"  # and runs on


async def test_every_change_is_saved_and_unchanged_state_is_not_rewritten(tmp_path: Path) -> None:
    d = Device(tmp_path)
    d.call("set_timer", {"seconds": 30})
    await d.timers.save()
    path = tmp_path / STATE_FILE
    first = path.stat().st_mtime_ns
    await asyncio.sleep(0.01)
    await d.timers.save()
    assert path.stat().st_mtime_ns == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


async def test_with_nothing_set_no_clock_is_watched_and_a_timer_set_later_rings(
        tmp_path: Path) -> None:
    d = Device(tmp_path)
    c, looks, rings = d.clock, [], []
    d.timers._clock = lambda: looks.append(c.mono) or c.mono
    task = asyncio.create_task(d.timers.run(rings.append, lambda: None))
    await asyncio.sleep(2.2)
    assert len(looks) <= 1  # the first look, then asleep until something is set
    d.call("set_timer", {"seconds": 1})
    await asyncio.sleep(0.05)
    c.mono += 2
    c.wall += 2
    await asyncio.sleep(1.1)
    task.cancel()
    assert [[e.id for e in ring.entries] for ring in rings] == [["t1"]]


def test_the_state_directory_follows_systemd_then_xdg_then_home() -> None:
    assert state_dir("/x", {"STATE_DIRECTORY": "/s"}) == Path("/x")
    assert state_dir("", {"STATE_DIRECTORY": "/var/lib/pivox"}) == Path("/var/lib/pivox")
    assert state_dir("", {"XDG_STATE_HOME": "/h/st"}) == Path("/h/st/pivox")
    assert state_dir("", {}) == Path.home() / ".local/state/pivox"


def test_labels_are_logged_bounded_and_escaped(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    d = Device(tmp_path)
    with caplog.at_level(logging.INFO, "pivox.timers"):
        d.call("set_timer", {"seconds": 9, "label": "pasta %s {0} 'al dente'"})
    [line] = caplog.records
    assert line.PIVOX_EVENT == "timer_set" and line.TIMER_ID == "t1"  # type: ignore[attr-defined]
    assert line.TIMER_KIND == "timer"  # type: ignore[attr-defined]
