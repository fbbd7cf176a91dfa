"""The commands both doors take (control socket, MQTT): parse, validate, run on a host.

Pure. A command arrives as a name and one argument: a JSON value from the socket, or the
text of an MQTT payload. `parse_command` checks both against one table and returns a
`Command` or a `Refused` carrying a clear, bounded message: hostile input (a huge text, a
wrong type, a number out of range, an unknown name) never raises. `run_command` hands a
valid command to a `ControlHost`, which the daemon implements.

| name | argument | effect |
|---|---|---|
| `mute` | bool (`ON`/`OFF`, `true`/`false`, `1`/`0` as text) | mic mute on or off |
| `volume` | integer 0..100 (`"42"`, `"42.0"` as text) | speaker volume |
| `say` | text, 1..MAX_TEXT_CHARS | a chime, then the text spoken (an announcement) |
| `ask` | text, 1..MAX_TEXT_CHARS | the question spoken, then listening without the wake word |
| `stop` | none | ends a reply, an announcement or a ringing timer |
| `wake_word` | one of config.WAKE_WORDS | the wake word listened for |
| `converse` | none | starts a conversation, as a tap does |
| `status` | none | the status snapshot |
| `timers` | none | the running timers |
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from pivox.config import WAKE_WORDS

MAX_TEXT_CHARS = 1000
"""Longest text of `say` or `ask`: a spoken sentence or three, never a document."""
MAX_ECHO_CHARS = 40
"""What an error quotes of a peer value at most."""

CommandName = Literal[
    "mute", "volume", "say", "ask", "wake_word", "stop", "converse", "status", "timers"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One valid command: its name and its checked argument (None when it takes none)."""

    name: CommandName
    value: bool | int | str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """Input that is not a valid command; `message` says what was expected (bounded)."""

    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerInfo:
    """One running timer as the doors show it."""

    name: str
    due_in_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """What `pivox status` and the MQTT states show; plain values, JSON-ready."""

    state: str
    link: bool
    provider: str
    last_latency_ms: int | None
    muted: bool
    volume: int
    timers: tuple[TimerInfo, ...] = ()
    mqtt: str = "off"
    """`off` (not configured), `connected` or `disconnected`."""
    announcements_queued: int = 0
    wake_word: str = ""
    next_timer: str | None = None
    """When the next timer rings, ISO 8601 with the zone (None: no timer)."""

    def to_json(self) -> dict[str, Any]:
        """The snapshot as a JSON object."""
        data = asdict(self)
        data["timers"] = [asdict(t) for t in self.timers]
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """The outcome of one command: `ok`, a message, and data for `status`/`timers`."""

    ok: bool
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The reply as the socket writes it."""
        out: dict[str, Any] = {"ok": self.ok}
        if self.message:
            out["error" if not self.ok else "message"] = self.message
        out.update(self.data)
        return out


class ControlHost(Protocol):
    """What the doors may change on the device; the daemon implements it."""

    def set_muted(self, muted: bool) -> None:
        """Mute or unmute the microphone."""

    def set_volume(self, level: int) -> None:
        """Set the speaker volume, 0..100."""

    def announce(self, text: str) -> str | None:
        """Queue an announcement; an error message when refused (queue full)."""

    def ask(self, text: str) -> str | None:
        """Queue a question; an error message when refused."""

    def set_wake_word(self, name: str) -> None:
        """Listen for another of the built-in wake words."""

    def stop_speaking(self) -> None:
        """End what is playing: a reply, an announcement, a ringing timer."""

    def start_conversation(self) -> None:
        """Start listening, as a tap does."""

    def status(self) -> Status:
        """The current snapshot."""


# --------------------------------------------------------------------------- arguments


def _echo(value: Any) -> str:
    text = repr(value) if isinstance(value, str | int | float | bool | None) else type(
        value).__name__
    return text if len(text) <= MAX_ECHO_CHARS else f"{text[:MAX_ECHO_CHARS]}...({len(text)} chars)"


_TRUE = ("on", "true", "1", "yes")
_FALSE = ("off", "false", "0", "no")


def _bool(value: Any, text: bool) -> bool:
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str) and len(value) <= 8:
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(f"expected on or off, got {_echo(value)}")


def _level(value: Any, text: bool) -> int:
    number: Any = value
    if text and isinstance(value, str) and len(value) <= 16:
        try:
            number = float(value.strip())
        except ValueError:
            number = value
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(
            number) or not 0 <= number <= 100:
        raise ValueError(f"expected a number from 0 to 100, got {_echo(value)}")
    return round(number)


def _text(value: Any, text: bool) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {_echo(value)}")
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"text too long: {len(value)} chars, at most {MAX_TEXT_CHARS}")
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in value).split())
    if not cleaned:
        raise ValueError("expected some text, got none")
    return cleaned


def _wake_word(value: Any, text: bool) -> str:
    if not isinstance(value, str) or value.strip() not in WAKE_WORDS:
        raise ValueError(f"expected one of {', '.join(WAKE_WORDS)}, got {_echo(value)}")
    return value.strip()


def _none(value: Any, text: bool) -> None:
    if value is None or (text and isinstance(value, str) and len(value) <= 16):
        return None  # an MQTT button sends a payload ("PRESS"): any short one will do
    raise ValueError(f"takes no argument, got {_echo(value)}")


_ARGUMENTS: dict[str, Callable[[Any, bool], bool | int | str | None]] = {
    "mute": _bool,
    "volume": _level,
    "say": _text,
    "ask": _text,
    "wake_word": _wake_word,
    "stop": _none,
    "converse": _none,
    "status": _none,
    "timers": _none,
}

COMMAND_NAMES: tuple[str, ...] = tuple(_ARGUMENTS)


def parse_command(name: Any, value: Any, *, text: bool = False) -> Command | Refused:
    """A valid `Command`, or `Refused` saying why; never raises.

    `text`: the argument is the text of an MQTT payload, so "ON" is a bool and "42" a number.
    """
    if not isinstance(name, str) or name not in _ARGUMENTS:
        return Refused(message=f"unknown command {_echo(name)}; one of {', '.join(_ARGUMENTS)}")
    try:
        checked = _ARGUMENTS[name](value, text)
    except ValueError as exc:
        return Refused(message=f"{name}: {exc}")
    return Command(name=name, value=checked)  # type: ignore[arg-type]


def run_command(host: ControlHost, command: Command) -> Reply:
    """Carry out a valid command on the host and say how it went."""
    value = command.value
    if command.name == "mute":
        host.set_muted(bool(value))
    elif command.name == "volume":
        assert isinstance(value, int)
        host.set_volume(value)
    elif command.name in ("say", "ask"):
        assert isinstance(value, str)
        error = (host.announce if command.name == "say" else host.ask)(value)
        if error is not None:
            return Reply(ok=False, message=error)
    elif command.name == "wake_word":
        assert isinstance(value, str)
        host.set_wake_word(value)
    elif command.name == "stop":
        host.stop_speaking()
    elif command.name == "converse":
        host.start_conversation()
    elif command.name == "timers":
        return Reply(ok=True, data={"timers": host.status().to_json()["timers"]})
    return Reply(ok=True, data={"status": host.status().to_json()})
