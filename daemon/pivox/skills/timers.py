"""Timers and alarms as tools the model calls, kept in a state file, rung on the device.

`Timers` holds the pure `Schedule` (pivox.core.schedule), reads the clocks into it, logs one
journald line per set, ring, snooze, dismissal and miss (`PIVOX_EVENT=timer_*`, `TIMER_ID`,
`TIMER_LABEL`, `TIMER_KIND`), and keeps the schedule in `timers.json` in the state
directory: read once at start (a file that cannot be used is set aside and named in one
error line), written atomically off the event loop after every change. `run()` wakes at the
next due time (and every second, to notice a wall clock jump) and hands what is due to the
daemon. The tools answer at once; `save()` is awaited before their output is sent, so an
answered `set_timer` survives a crash.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import zoneinfo
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pivox.config import TimerSettings
from pivox.core.events import Tool
from pivox.core.schedule import (
    DAYS,
    MAX_ENTRIES,
    MAX_LABEL_CHARS,
    MAX_STATE_BYTES,
    MAX_TIMER_S,
    Entry,
    Kind,
    Missed,
    Now,
    Output,
    Ring,
    RingExpired,
    Schedule,
    ScheduleError,
    check_label,
    parse_alarm,
)
from pivox.host.clock import boot_id, clock_synced
from pivox.host.statefile import STATE_FILE, read_state, set_aside, state_dir, write_atomic
from pivox.host.waits import wait_set

log = logging.getLogger("pivox.timers")

SYNC_PROBE_S = 1.0
"""How often the clock's synchronisation is asked at most."""
JUMP_CHECK_S = 1.0
"""Longest sleep of `run()` while anything is set: a wall clock jump is noticed within this."""
MAX_SNOOZE_MIN = 60
DELAY_LOGGED_S = 0.05
"""A chime this much later than its ring (the user was speaking) is logged."""


class Timers:
    """The device's timers and alarms: the schedule, its clocks, its file and its tools."""

    def __init__(self, settings: TimerSettings, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 synced: Callable[[], bool | None] = clock_synced,
                 boot: str | None = None) -> None:
        tz = zoneinfo.ZoneInfo(settings.timezone) if settings.timezone else local_zone()
        self.schedule = Schedule(tz, missed_ring_s=settings.missed_ring_s,
                                 max_ring_s=settings.max_ring_s)
        self.path = state_dir(settings.state_dir) / STATE_FILE
        self._clock, self._wall, self._synced = clock, wall, synced
        self._boot = boot_id() if boot is None else boot
        self._sync: tuple[float, bool | None] = (-SYNC_PROBE_S, None)
        self._saved = 0
        self._write = asyncio.Lock()
        self._wake = asyncio.Event()
        self._on_expired: Callable[[], None] = lambda: None

    def now(self) -> Now:
        """The clocks now (the synchronisation probed at most once a second)."""
        mono = self._clock()
        if mono - self._sync[0] >= SYNC_PROBE_S:
            self._sync = (mono, self._synced())
        return Now(mono=mono, wall=self._wall(), synced=self._sync[1])

    # ------------------------------------------------------------------ the file

    def load(self) -> None:
        """Read the state file once at start; one that cannot be used is set aside."""
        try:
            data = read_state(self.path, MAX_STATE_BYTES)
            if data is None:
                return
            self.schedule.restore(data, self.now(), self._boot)
        except (OSError, ValueError) as exc:
            aside = self._set_aside()
            log.error("timer state %s unusable (%s); kept as %s, starting with no timers",
                      self.path, exc, aside, extra={"PIVOX_EVENT": "timer_state_corrupt"})
            return
        self._saved = self.schedule.version
        log.info("%d timers and alarms restored from %s", len(self.schedule.entries), self.path,
                 extra={"PIVOX_EVENT": "timer_state_loaded"})

    def _set_aside(self) -> str:
        try:
            return str(set_aside(self.path))
        except OSError as exc:
            return f"nothing ({exc.strerror or exc})"

    async def save(self) -> None:
        """Write the schedule if it changed, off the loop; later states never lose to earlier."""
        async with self._write:
            version = self.schedule.version
            if version == self._saved:
                return
            data = self.schedule.dump(self.now(), self._boot)
            try:
                await asyncio.to_thread(write_atomic, self.path, data)
            except OSError as exc:
                log.error("cannot write timer state %s: %s", self.path, exc.strerror or exc,
                          extra={"PIVOX_EVENT": "timer_state_unwritten"})
                return
            self._saved = version

    # ------------------------------------------------------------------ time passes

    async def run(self, on_ring: Callable[[Ring], None], on_expired: Callable[[], None]) -> None:
        """Hand each ring to `on_ring`; call `on_expired` when a ring ends without the device
        dismissing it (it ran out, or the stop_ringing tool stopped it); for ever."""
        self._on_expired = on_expired
        while True:
            self._wake.clear()  # before the work: a change during the save wakes the next wait
            for output in self.tick():
                if isinstance(output, Ring):
                    on_ring(output)
                elif isinstance(output, RingExpired):
                    on_expired()
            await self.save()
            # nothing set: nothing can fall due, so no clock to watch until a change wakes it
            wait = min(self.schedule.next_check(self.now()), JUMP_CHECK_S) if (
                self.schedule.entries) else None
            await wait_set(self._wake, wait)

    def tick(self) -> list[Output]:
        """What is due now, each logged."""
        now = self.now()
        outputs = self.schedule.tick(now)
        for output in outputs:
            if isinstance(output, Ring):
                for entry in output.entries:
                    _log("timer_ringing", entry, "%s %s ringing, %.0f ms after due",
                         entry.kind, entry.id,
                         1000 * max(0.0, now.mono - (entry.due_mono or now.mono)))
            elif isinstance(output, Missed):
                _log("timer_missed", output.entry, "alarm %s missed: due %.0f s ago, more "
                     "than timers.missed_ring_s", output.entry.id, output.late_s,
                     level=logging.WARNING)
            else:
                for entry in output.entries:
                    _log("timer_dismissed", entry, "%s %s rang out undismissed (max_ring_s)",
                         entry.kind, entry.id)
        return outputs

    def upcoming(self) -> list[tuple[str, float, float]]:
        """Each timer and alarm still to ring, soonest first: (label or id, seconds left,
        wall time due), for the control socket and MQTT."""
        now = self.now()
        out = []
        for entry in self.schedule.entries:
            due = self.schedule.due_wall(entry, now)
            if due is not None and entry.ringing_since is None:
                out.append((entry.label or entry.id, max(0.0, due - now.wall), due))
        return sorted(out, key=lambda item: item[2])

    def sounding(self) -> None:
        """The chime started; if it waited for the user to stop speaking, log how long."""
        now = self.now()
        since = [e.ringing_since for e in self.schedule.ringing if e.ringing_since is not None]
        waited = now.mono - min(since, default=now.mono)
        if waited >= DELAY_LOGGED_S:
            log.info("ringing %.0f ms late: waited for the user to stop speaking",
                     1000 * waited, extra={"PIVOX_EVENT": "timer_ring_delayed",
                                           "PIVOX_DELAY_MS": round(1000 * waited)})

    def dismiss(self, how: str) -> tuple[Entry, ...]:
        """Stop what is ringing (`how`: what dismissed it, for the log)."""
        gone = self.schedule.dismiss(self.now())
        for entry in gone:
            _log("timer_dismissed", entry, "%s %s dismissed by %s", entry.kind, entry.id, how)
        self._changed()
        return gone

    def _changed(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------------ tools

    def call(self, name: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
        """Run tool `name`; ValueError (ScheduleError) with a readable message when refused."""
        handler, allowed = _HANDLERS[name]
        unknown = sorted(set(args) - allowed)
        if unknown:
            raise ScheduleError(f"unknown argument {unknown[0][:32]!r}; {name} takes "
                                f"{', '.join(sorted(allowed)) or 'no arguments'}")
        result = handler(self, args)
        self._changed()
        return result

    def _set_timer(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        seconds = _whole(args.get("seconds"), "seconds", 1, MAX_TIMER_S)
        now = self.now()
        entry = self.schedule.set_timer(seconds, check_label(args.get("label")), now)
        _log("timer_set", entry, "timer %s set for %d s", entry.id, seconds)
        return {"id": entry.id, "label": entry.label, "seconds": seconds,
                "due": self._clock_text(now.wall + seconds)}

    def _set_alarm(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        alarm = parse_alarm(args.get("time"), args.get("date"), args.get("days"))
        now = self.now()
        entry = self.schedule.set_alarm(alarm, check_label(args.get("label")), now)
        _log("timer_set", entry, "alarm %s set for %s", entry.id, alarm.text())
        return self._alarm_view(entry, now)

    def _cancel(self, kind: Kind, args: Mapping[str, Any]) -> Mapping[str, Any]:
        given = [key for key in ("id", "label", "all") if args.get(key) is not None]
        if len(given) != 1:
            raise ScheduleError("give exactly one of id, label or all")
        if given == ["all"] and args["all"] is not True:
            raise ScheduleError("all must be true")
        for key in ("id", "label"):
            if key in given and not isinstance(args[key], str):
                raise ScheduleError(f"{key} must be text")
        label = check_label(args.get("label")) if "label" in given else None
        entry_id = args.get("id")
        if isinstance(entry_id, str) and len(entry_id) > 16:
            raise ScheduleError("no such id")
        gone = self.schedule.cancel(kind, self.now(), entry_id=entry_id, label=label)
        if not gone and given != ["all"]:
            raise ScheduleError(f"no {kind} with that {given[0]}")
        for entry in gone:
            _log("timer_dismissed", entry, "%s %s cancelled", kind, entry.id)
        return {"cancelled": [{"id": e.id, "label": e.label} for e in gone]}

    def _list(self, kind: Kind) -> Mapping[str, Any]:
        now = self.now()
        entries = [e for e in self.schedule.entries if e.kind == kind]
        if kind == "alarm":
            return {"alarms": [self._alarm_view(e, now) for e in entries]}
        return {"timers": [{
            "id": e.id, "label": e.label,
            "status": "ringing" if e.ringing_since is not None else "running",
            "left_s": 0 if e.ringing_since is not None else max(
                0, round((e.due_mono or now.mono) - now.mono)),
        } for e in entries]}

    def _snooze(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        minutes = _whole(args.get("minutes"), "minutes", 1, MAX_SNOOZE_MIN)
        now = self.now()
        snoozed = self.schedule.snooze(minutes, now)
        if not snoozed:
            raise ScheduleError("nothing is ringing (or rang in the last two minutes)")
        for entry in snoozed:
            _log("timer_snoozed", entry, "%s %s snoozed for %d min", entry.kind, entry.id,
                 minutes)
        return {"snoozed": [{"id": e.id, "label": e.label} for e in snoozed],
                "rings_at": self._clock_text(now.wall + 60 * minutes)}

    def _stop_ringing(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        stopped = self.dismiss("the stop_ringing tool")
        if stopped:
            self._on_expired()
        return {"stopped": [{"id": e.id, "label": e.label} for e in stopped]}

    def _alarm_view(self, entry: Entry, now: Now) -> dict[str, Any]:
        assert entry.alarm is not None
        due = self.schedule.due_wall(entry, now)
        view: dict[str, Any] = {
            "id": entry.id, "label": entry.label, "time": entry.alarm.text(),
            "days": [DAYS[d] for d in entry.alarm.days],
            "status": ("ringing" if entry.ringing_since is not None
                       else "missed" if entry.done else "set"),
            "next": None if due is None or entry.done else self._date_text(due),
        }
        if entry.missed_wall is not None:
            view["missed"] = self._date_text(entry.missed_wall)
        return view

    def _clock_text(self, wall: float) -> str:
        return dt.datetime.fromtimestamp(wall, self.schedule.tz).strftime("%H:%M:%S")

    def _date_text(self, wall: float) -> str:
        return dt.datetime.fromtimestamp(wall, self.schedule.tz).strftime("%Y-%m-%d %H:%M")


def local_zone() -> dt.tzinfo:
    """The system's time zone (/etc/localtime), or UTC when it has none."""
    try:
        return zoneinfo.ZoneInfo("localtime") if Path("/etc/localtime").exists() else dt.UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _whole(value: Any, name: str, low: int, high: int) -> int:
    """A whole number `low..high` (a float with no fraction counts), else ScheduleError."""
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or number != number or not low <= number <= high or number % 1:
        raise ScheduleError(f"{name} must be a whole number from {low} to {high}")
    return int(number)


def _log(event: str, entry: Entry, message: str, *args: Any, level: int = logging.INFO) -> None:
    """One journald line about `entry`; its label goes in as a field and an argument, which
    logsafe bounds and escapes."""
    log.log(level, message + " (%s)", *args, entry.label or "no label", extra={
        "PIVOX_EVENT": event, "TIMER_ID": entry.id, "TIMER_LABEL": entry.label,
        "TIMER_KIND": entry.kind})


_LABEL = {"type": "string", "maxLength": MAX_LABEL_CHARS,
          "description": "A short name the user gave it, e.g. \"eggs\"."}
_PICK = {"id": {"type": "string"}, "label": {"type": "string", "maxLength": MAX_LABEL_CHARS},
         "all": {"type": "boolean", "enum": [True]}}
_ALARM = {
    "time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
             "description": "Local time, 24-hour HH:MM."},
    "date": {"type": "string", "description": "YYYY-MM-DD, for one day only."},
    "days": {"type": "array", "items": {"type": "string", "enum": list(DAYS)},
             "description": "Weekdays it repeats on."},
    "label": _LABEL,
}


def _tool(name: str, description: str, properties: Mapping[str, Any],
          required: tuple[str, ...] = ()) -> Tool:
    return Tool(name=name, description=description, parameters={
        "type": "object", "properties": dict(properties), "required": list(required),
        "additionalProperties": False})


TOOLS: tuple[Tool, ...] = (
    _tool("set_timer", f"Start a countdown timer on the speaker (at most {MAX_ENTRIES} timers "
          "and alarms in all). It rings on the device even offline.",
          {"seconds": {"type": "integer", "minimum": 1, "maximum": MAX_TIMER_S},
           "label": _LABEL}, ("seconds",)),
    _tool("cancel_timer", "Cancel timers: give exactly one of id, label or all.", _PICK),
    _tool("list_timers", "The timers with the time left of each, and which are ringing.", {}),
    _tool("set_alarm", "Set an alarm at a local time: once, on a date, or on weekdays.",
          _ALARM, ("time",)),
    _tool("cancel_alarm", "Cancel alarms: give exactly one of id, label or all.", _PICK),
    _tool("list_alarms", "The alarms, when each rings next, and any missed.", {}),
    _tool("snooze", "Ring again in some minutes what is ringing (or just rang).",
          {"minutes": {"type": "integer", "minimum": 1, "maximum": MAX_SNOOZE_MIN}},
          ("minutes",)),
    _tool("stop_ringing", "Stop the timer or alarm that is ringing.", {}),
)

_HANDLERS: dict[str, tuple[Callable[[Timers, Mapping[str, Any]], Mapping[str, Any]],
                           frozenset[str]]] = {
    "set_timer": (Timers._set_timer, frozenset({"seconds", "label"})),
    "cancel_timer": (lambda t, a: t._cancel("timer", a), frozenset(_PICK)),
    "list_timers": (lambda t, a: t._list("timer"), frozenset()),
    "set_alarm": (Timers._set_alarm, frozenset(_ALARM)),
    "cancel_alarm": (lambda t, a: t._cancel("alarm", a), frozenset(_PICK)),
    "list_alarms": (lambda t, a: t._list("alarm"), frozenset()),
    "snooze": (Timers._snooze, frozenset({"minutes"})),
    "stop_ringing": (Timers._stop_ringing, frozenset()),
}
TOOL_NAMES = tuple(_HANDLERS)
