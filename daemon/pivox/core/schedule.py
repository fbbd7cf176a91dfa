"""Timers and alarms: due times in, "ring now" and "missed" out, given the clocks.

Pure: every call takes a `Now` — the monotonic clock, the wall clock (seconds since the
epoch) and whether the wall clock is known to be synchronised (`None`: cannot know) — and
`tick(now)` returns what happened since the last look as `Ring`, `Missed` and `RingExpired`
values. Nothing here sleeps, reads a clock or touches a file; `dump`/`restore` turn the
schedule into bytes and back, validating every field of what they read.

Timers count on the monotonic clock, so a wall clock jump moves none of them. Alarms are
wall times in a time zone; an alarm set on this boot is anchored to the monotonic instant it
was set (or last rang), so when the wall clock jumps — a Raspberry Pi has no real-time clock
and NTP can step it hours after boot — its next occurrence is computed again from where that
instant lies on the corrected clock: a jump neither rings it early nor declares it missed.
An alarm restored from an earlier boot has no such anchor yet: while the clock is known NOT
to be synchronised it neither rings nor is declared missed; it waits for the clock, and is
anchored at the first look at a clock that can be believed (synchronised, or `synced=None`:
cannot know, and the wall clock is trusted as it is).

A restart on the same boot (same `boot_id`; where no boot id can be read, the monotonic
clock has not gone back and still agrees with the wall clock) keeps every monotonic due time
exactly; after a reboot a timer resumes with its remaining time less the wall time the
device was down, never more than it had left when saved (a clock still behind after boot
cannot lengthen it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["timer", "alarm"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_ENTRIES = 32
"""Timers and alarms together, at most."""
MAX_LABEL_CHARS = 64
MAX_TIMER_S = 86400
JUMP_S = 2.0
"""A change of (wall - monotonic) larger than this is a wall clock jump."""
SNOOZE_GRACE_S = 120.0
"""What rang and was dismissed this recently can still be snoozed ("Okay Nabu, snooze")."""
MISSED_KEPT_S = 86400.0
"""A one-off alarm that was missed is listed as missed this long, then forgotten."""
MAX_STATE_BYTES = 256 * 1024
"""A state file longer than this is refused unread (32 entries take about 10 KB)."""
FORMAT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Now:
    """One reading of the clocks."""

    mono: float
    wall: float
    synced: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmTime:
    """When an alarm rings: `hour:minute` local time, on `date`, or on `days` (0 = Monday),
    or else once, at the next such time."""

    hour: int
    minute: int
    date: dt.date | None = None
    days: tuple[int, ...] = ()

    @property
    def once(self) -> bool:
        """True when the alarm rings one time only."""
        return not self.days

    def text(self) -> str:
        """`HH:MM`, as the tools read and answer it."""
        return f"{self.hour:02d}:{self.minute:02d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One timer or alarm. `due_mono` (this boot's monotonic clock) rules timers and a
    snoozed alarm; an alarm otherwise rings at its first occurrence after `after_wall`,
    which `after_mono` anchors on this boot's clock when known."""

    id: str
    kind: Kind
    label: str
    seconds: int = 0
    alarm: AlarmTime | None = None
    due_mono: float | None = None
    after_wall: float = 0.0
    after_mono: float | None = None
    ringing_since: float | None = None
    missed_wall: float | None = None
    done: bool = False
    """A one-off alarm that was missed: listed, never rung."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ring:
    """These entries are due now (one ring for all); `late_s` how late the earliest is."""

    entries: tuple[Entry, ...]
    late_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Missed:
    """An alarm was due more than `missed_ring_s` ago (the device was off): not rung."""

    entry: Entry
    late_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RingExpired:
    """The ring lasted `max_ring_s` undismissed: these entries stopped ringing."""

    entries: tuple[Entry, ...]


Output = Ring | Missed | RingExpired


class ScheduleError(ValueError):
    """A request the schedule refuses; the message is meant for the user."""


def next_occurrence(alarm: AlarmTime, after: float, tz: dt.tzinfo) -> float | None:
    """The first wall time (epoch seconds) strictly after `after` when `alarm` rings, or
    None when a dated alarm's time has passed."""
    at = dt.time(alarm.hour, alarm.minute)
    if alarm.date is not None:
        when = dt.datetime.combine(alarm.date, at, tzinfo=tz).timestamp()
        return when if when > after else None
    day = dt.datetime.fromtimestamp(after, tz).date()
    for offset in range(9):
        date = day + dt.timedelta(days=offset)
        if alarm.days and date.weekday() not in alarm.days:
            continue
        when = dt.datetime.combine(date, at, tzinfo=tz).timestamp()
        if when > after:
            return when
    return None  # unreachable for a valid alarm: every weekday recurs within 8 days


class Schedule:
    """The timers and alarms of one device; see the module docstring for the clock rules."""

    def __init__(self, tz: dt.tzinfo, *, missed_ring_s: float = 600.0,
                 max_ring_s: float = 600.0) -> None:
        self.tz = tz
        self.missed_ring_s = missed_ring_s
        self.max_ring_s = max_ring_s
        self._entries: dict[str, Entry] = {}
        self._recent: list[tuple[Entry, float]] = []
        self._next_id = 1
        self._offset: float | None = None
        self._unanchored = False
        self._ring_started: float | None = None
        self._due_cache: dict[str, float | None] = {}
        self.version = 0
        """Counts changes that must be saved."""

    # ------------------------------------------------------------------ reading

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Every timer and alarm, in the order they were set."""
        return tuple(self._entries.values())

    @property
    def ringing(self) -> tuple[Entry, ...]:
        """The entries ringing now."""
        return tuple(e for e in self._entries.values() if e.ringing_since is not None)

    def due_wall(self, entry: Entry, now: Now) -> float | None:
        """When `entry` rings next, on the wall clock as it reads now (None: never)."""
        if entry.due_mono is not None:
            return entry.due_mono + (now.wall - now.mono)
        if entry.alarm is None or entry.done:
            return None
        self._observe(now)
        return self._alarm_due(entry)

    def next_check(self, now: Now) -> float:
        """Seconds until `tick` may have something to say (at most a minute)."""
        soonest = 60.0
        if self._ring_started is not None:
            soonest = min(soonest, self._ring_started + self.max_ring_s - now.mono)
        for entry in self._entries.values():
            if entry.ringing_since is not None:
                continue
            due = self.due_wall(entry, now)
            if due is not None:
                soonest = min(soonest, due - now.wall)
        return max(0.0, soonest)

    # ------------------------------------------------------------------ requests

    def set_timer(self, seconds: int, label: str, now: Now) -> Entry:
        """A timer due `seconds` from now."""
        self._room()
        entry = Entry(id=self._new_id("t"), kind="timer", label=label, seconds=seconds,
                      due_mono=now.mono + seconds)
        return self._put(entry)

    def set_alarm(self, alarm: AlarmTime, label: str, now: Now) -> Entry:
        """An alarm at its next occurrence after now; refused when a dated one has passed."""
        self._room()
        if next_occurrence(alarm, now.wall, self.tz) is None:
            raise ScheduleError(f"{alarm.date} {alarm.text()} has already passed")
        entry = Entry(id=self._new_id("a"), kind="alarm", label=label, alarm=alarm,
                      after_wall=now.wall, after_mono=now.mono)
        return self._put(entry)

    def cancel(self, kind: Kind, now: Now, *, entry_id: str | None = None,
               label: str | None = None) -> tuple[Entry, ...]:
        """Remove the entries of `kind` with that id or label (neither: all of that kind)."""
        gone = tuple(e for e in self._entries.values() if e.kind == kind
                     and (entry_id is None or e.id == entry_id)
                     and (label is None or e.label.casefold() == label.casefold()))
        for entry in gone:
            self._remove(entry.id)
        self._recent = [(e, t) for e, t in self._recent if e not in gone]
        self._end_ring_if_silent()
        return gone

    def snooze(self, minutes: int, now: Now) -> tuple[Entry, ...]:
        """Ring again in `minutes` what is ringing, or what rang and was dismissed lately."""
        self._observe(now)
        targets = self.ringing
        if not targets:
            recent = [e for e, at in self._recent if now.mono - at <= SNOOZE_GRACE_S]
            targets = tuple(e for e in recent if e.id in self._entries or len(self._entries)
                            < MAX_ENTRIES)
        self._recent.clear()
        snoozed = []
        for entry in targets:
            current = self._entries.get(entry.id, entry)
            if current.ringing_since is not None and current.kind == "alarm" \
                    and current.due_mono is None:
                current = self._advanced(current, now)
            snoozed.append(self._put(dataclasses.replace(
                current, ringing_since=None, due_mono=now.mono + 60 * minutes)))
        self._end_ring_if_silent()
        return tuple(snoozed)

    def dismiss(self, now: Now) -> tuple[Entry, ...]:
        """Stop what is ringing: timers and one-off alarms go, repeating alarms move on."""
        self._observe(now)
        rang = self.ringing
        for entry in rang:
            if entry.kind == "timer" or (entry.alarm is not None and entry.alarm.once):
                self._remove(entry.id)
            else:
                if entry.due_mono is None:
                    entry = self._advanced(entry, now)
                self._put(dataclasses.replace(entry, ringing_since=None, due_mono=None))
            self._recent.append((entry, now.mono))
        self._recent = [(e, t) for e, t in self._recent if now.mono - t <= SNOOZE_GRACE_S]
        self._ring_started = None
        return rang

    # ------------------------------------------------------------------ time passes

    def tick(self, now: Now) -> list[Output]:
        """What is due, missed or rang out by `now`."""
        self._observe(now)
        out: list[Output] = []
        due: list[tuple[Entry, float]] = []
        for entry in list(self._entries.values()):
            if entry.ringing_since is not None or entry.done:
                if entry.done and entry.missed_wall is not None \
                        and now.wall - entry.missed_wall > MISSED_KEPT_S:
                    self._remove(entry.id)
                continue
            if entry.due_mono is not None:
                if now.mono >= entry.due_mono:
                    due.append((entry, now.mono - entry.due_mono))
                continue
            if entry.after_mono is None and now.synced is False:
                continue  # from an earlier boot: wait for a clock that can be believed
            when = self._alarm_due(entry)
            if when is None or now.wall < when:
                continue
            late = now.wall - when
            if late <= self.missed_ring_s:
                due.append((entry, late))
            else:
                out.append(Missed(entry=self._miss(entry, when, now), late_s=late))
        if due:
            rung = tuple(self._put(dataclasses.replace(e, ringing_since=now.mono))
                         for e, _ in due)
            if self._ring_started is None:
                self._ring_started = now.mono
            out.append(Ring(entries=rung, late_s=max(late for _, late in due)))
        elif self._ring_started is not None and now.mono - self._ring_started >= self.max_ring_s:
            out.append(RingExpired(entries=self.dismiss(now)))
        return out

    # ------------------------------------------------------------------ state file

    def dump(self, now: Now, boot_id: str) -> bytes:
        """The schedule as JSON bytes, with what a restart needs to resume it."""
        return json.dumps({
            "format": FORMAT, "boot_id": boot_id, "saved_wall": now.wall,
            "saved_mono": now.mono, "next_id": self._next_id,
            "entries": [_entry_json(e, now) for e in self._entries.values()],
        }, separators=(",", ":")).encode()

    def restore(self, data: bytes, now: Now, boot_id: str) -> None:
        """Replace the entries with those of `dump` output; ValueError (saying what is wrong)
        for anything else, leaving the schedule as it was."""
        if len(data) > MAX_STATE_BYTES:
            raise ValueError(f"longer than {MAX_STATE_BYTES} bytes")
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise ValueError(f"not JSON: {str(exc)[:80]}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a format {FORMAT} state object")
        saved_wall, saved_mono = _number(doc, "saved_wall"), _number(doc, "saved_mono")
        if boot_id and doc.get("boot_id"):
            same_boot = doc.get("boot_id") == boot_id
        else:  # no boot id (the unit's ProcSubset=pid hides /proc/sys): the clocks must agree
            same_boot = now.mono >= saved_mono and abs(
                (now.wall - now.mono) - (saved_wall - saved_mono)) <= JUMP_S
        raw = doc.get("entries")
        if not isinstance(raw, list) or len(raw) > MAX_ENTRIES:
            raise ValueError(f"entries must be a list of at most {MAX_ENTRIES}")
        entries = [_entry_from(item, now, same_boot, saved_wall) for item in raw]
        if len({e.id for e in entries}) != len(entries):
            raise ValueError("two entries share an id")
        next_id = doc.get("next_id")
        if not isinstance(next_id, int) or isinstance(next_id, bool) or not 0 < next_id < 2**53:
            raise ValueError("next_id must be a positive integer")
        self._entries = {e.id: e for e in entries}
        self._next_id = max([next_id, *(int(e.id[1:]) + 1 for e in entries)])
        self._due_cache.clear()
        self._recent.clear()
        self._ring_started = None
        self._offset = None
        self._unanchored = any(e.after_mono is None for e in entries if e.kind == "alarm")

    # ------------------------------------------------------------------ inside

    def _room(self) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            raise ScheduleError(f"at most {MAX_ENTRIES} timers and alarms can be set; "
                                "cancel one first")

    def _new_id(self, prefix: str) -> str:
        entry_id = f"{prefix}{self._next_id}"
        self._next_id += 1
        return entry_id

    def _put(self, entry: Entry) -> Entry:
        self._entries[entry.id] = entry
        self._due_cache.pop(entry.id, None)
        self.version += 1
        return entry

    def _remove(self, entry_id: str) -> None:
        if self._entries.pop(entry_id, None) is not None:
            self._due_cache.pop(entry_id, None)
            self.version += 1

    def _end_ring_if_silent(self) -> None:
        if not self.ringing:
            self._ring_started = None

    def _observe(self, now: Now) -> None:
        """Note the clocks: anchor restored alarms once the clock can be believed; after a
        wall clock jump, move every anchored alarm with it."""
        offset = now.wall - now.mono
        if self._unanchored and now.synced is not False:
            self._unanchored = False
            for entry in list(self._entries.values()):
                if entry.kind == "alarm" and entry.after_mono is None:
                    self._put(dataclasses.replace(entry, after_mono=entry.after_wall - offset))
        if self._offset is not None and abs(offset - self._offset) <= JUMP_S:
            return
        self._offset = offset
        for entry in list(self._entries.values()):
            if entry.after_mono is not None and entry.after_wall != entry.after_mono + offset:
                self._put(dataclasses.replace(entry, after_wall=entry.after_mono + offset))
        self._due_cache.clear()

    def _alarm_due(self, entry: Entry) -> float | None:
        if entry.id not in self._due_cache:
            assert entry.alarm is not None
            self._due_cache[entry.id] = next_occurrence(entry.alarm, entry.after_wall, self.tz)
        return self._due_cache[entry.id]

    def _advanced(self, entry: Entry, now: Now) -> Entry:
        """`entry` (an alarm ringing at its occurrence) moved past that occurrence."""
        when = self._alarm_due(entry)
        if when is None:
            return entry
        return self._put(dataclasses.replace(
            entry, after_wall=when, after_mono=when - (now.wall - now.mono)))

    def _miss(self, entry: Entry, when: float, now: Now) -> Entry:
        moved = dataclasses.replace(entry, missed_wall=when, after_wall=when,
                                    after_mono=when - (now.wall - now.mono))
        if entry.alarm is not None and entry.alarm.once:
            moved = dataclasses.replace(moved, done=True)
        return self._put(moved)


# --------------------------------------------------------------------------- JSON


def _entry_json(entry: Entry, now: Now) -> dict[str, Any]:
    offset = now.wall - now.mono
    alarm = entry.alarm
    return {
        "id": entry.id, "kind": entry.kind, "label": entry.label, "seconds": entry.seconds,
        "due_mono": entry.due_mono,
        "due_wall": None if entry.due_mono is None else entry.due_mono + offset,
        "after_wall": entry.after_wall, "after_mono": entry.after_mono,
        "ringing": entry.ringing_since is not None, "missed_wall": entry.missed_wall,
        "done": entry.done,
        "alarm": None if alarm is None else {
            "time": alarm.text(), "date": None if alarm.date is None else alarm.date.isoformat(),
            "days": [DAYS[d] for d in alarm.days]},
    }


_ID = re.compile(r"[ta][1-9][0-9]{0,14}")


def _number(doc: Mapping[str, Any], key: str, *, optional: bool = False) -> float:
    value = doc.get(key)
    if value is None and optional:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number")
    return float(value)


def _entry_from(item: Any, now: Now, same_boot: bool, saved_wall: float) -> Entry:
    """One entry of a state file, validated; its times carried over to this start."""
    if not isinstance(item, dict):
        raise ValueError("an entry must be an object")
    entry_id, kind, label = item.get("id"), item.get("kind"), item.get("label")
    if not isinstance(entry_id, str) or _ID.fullmatch(entry_id) is None:
        raise ValueError("an entry id must be t<n> or a<n>")
    if kind not in ("timer", "alarm") or entry_id[0] != kind[0]:
        raise ValueError(f"entry {entry_id}: kind must be timer or alarm, matching its id")
    label = check_label(label)
    ringing = item.get("ringing") is True
    due_mono = _number(item, "due_mono", optional=True)
    if kind == "timer":
        seconds = item.get("seconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or \
                not 1 <= seconds <= MAX_TIMER_S:
            raise ValueError(f"entry {entry_id}: seconds must be 1..{MAX_TIMER_S}")
        due_wall = _number(item, "due_wall")
        if same_boot and not math.isnan(due_mono):
            due = due_mono
        else:  # downtime counted by the wall clock, never more than was left at saving
            left = min(due_wall - now.wall, due_wall - saved_wall)
            due = now.mono + max(0.0, left)
        return Entry(id=entry_id, kind="timer", label=label, seconds=seconds,
                     due_mono=now.mono if ringing else due)
    alarm = parse_alarm_json(item.get("alarm"), entry_id)
    after_mono = _number(item, "after_mono", optional=True)
    missed = _number(item, "missed_wall", optional=True)
    snoozed = None
    if not math.isnan(due_mono):
        snoozed = due_mono if same_boot else now.mono + max(0.0, min(
            _number(item, "due_wall") - now.wall, 3600.0))
    return Entry(id=entry_id, kind="alarm", label=label, alarm=alarm,
                 after_wall=_number(item, "after_wall"),
                 after_mono=after_mono if same_boot and not math.isnan(after_mono) else None,
                 due_mono=now.mono if ringing else snoozed,
                 missed_wall=None if math.isnan(missed) else missed,
                 done=item.get("done") is True and alarm.once and not ringing)


def parse_alarm_json(raw: Any, entry_id: str) -> AlarmTime:
    """The `alarm` object of a state file entry."""
    if not isinstance(raw, dict):
        raise ValueError(f"entry {entry_id}: alarm must be an object")
    try:
        return parse_alarm(raw.get("time"), raw.get("date"), raw.get("days"))
    except ScheduleError as exc:
        raise ValueError(f"entry {entry_id}: {exc}") from None


def check_label(label: Any) -> str:
    """A label: a string of at most MAX_LABEL_CHARS printable characters (None: empty)."""
    if label is None:
        return ""
    if not isinstance(label, str) or len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise ScheduleError(f"label must be text of at most {MAX_LABEL_CHARS} printable "
                            "characters")
    return label.strip()


def parse_alarm(time: Any, date: Any = None, days: Any = None) -> AlarmTime:
    """`HH:MM`, optional `YYYY-MM-DD`, optional day names: an AlarmTime or ScheduleError."""
    if not isinstance(time, str) or re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", time) is None:
        raise ScheduleError("time must be HH:MM, 24-hour (00:00 to 23:59)")
    day: dt.date | None = None
    if date is not None:
        try:
            if not isinstance(date, str) or re.fullmatch(r"\d{4}-\d{2}-\d{2}", date) is None:
                raise ValueError
            day = dt.date.fromisoformat(date)
        except ValueError:
            raise ScheduleError("date must be YYYY-MM-DD") from None
    weekdays: tuple[int, ...] = ()
    if days is not None:
        if not isinstance(days, list) or not all(isinstance(d, str) for d in days) or \
                len(days) > len(DAYS) or not set(map(str.lower, days)) <= set(DAYS) or \
                len(set(map(str.lower, days))) != len(days):
            raise ScheduleError(f"days must be a list of distinct day names: {', '.join(DAYS)}")
        weekdays = tuple(sorted(DAYS.index(d.lower()) for d in days))
    if day is not None and weekdays:
        raise ScheduleError("give a date or days, not both")
    return AlarmTime(hour=int(time[:2]), minute=int(time[3:]), date=day, days=weekdays)


def ids(entries: Iterable[Entry]) -> list[str]:
    """The ids of `entries`, for logs and tests."""
    return [e.id for e in entries]
