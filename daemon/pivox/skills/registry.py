"""The local tools the model may call: a registry of small functions, pure but for `now`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from pivox.core.events import Tool
from pivox.skills import timers

MAX_ARGUMENTS_CHARS = 4096
"""Longest arguments a call may carry: every tool here takes a few small fields."""
MAX_ECHO_CHARS = 64
"""What an error output quotes of a peer value at most: never a 10 MB argument back."""


class ToolHost(Protocol):
    """What a tool may change on the device; the daemon implements it."""

    def set_volume(self, level: int) -> None:
        """Set the speaker volume, 0..100."""

    def set_muted(self, muted: bool) -> None:
        """Mute or unmute the microphone."""

    @property
    def timers(self) -> timers.Timers:
        """The device's timers and alarms."""


@dataclass(frozen=True, slots=True)
class _Entry:
    tool: Tool
    run: Callable[[ToolHost, Mapping[str, Any]], Mapping[str, Any]]


def _get_time(host: ToolHost, args: Mapping[str, Any]) -> Mapping[str, Any]:
    now = dt.datetime.now().astimezone()
    return {"time": now.strftime("%H:%M"), "date": now.date().isoformat(), "tz": now.tzname()}


def _set_volume(host: ToolHost, args: Mapping[str, Any]) -> Mapping[str, Any]:
    level = args.get("level")
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 <= level <= 100:
        raise ValueError(f"level must be a number from 0 to 100, got {_echo(level)}")
    host.set_volume(round(level))
    return {"volume": round(level)}


def _mute(host: ToolHost, args: Mapping[str, Any]) -> Mapping[str, Any]:
    muted = args.get("muted", True)
    if not isinstance(muted, bool):
        raise ValueError(f"muted must be true or false, got {_echo(muted)}")
    host.set_muted(muted)
    return {"muted": muted}


_REGISTRY: dict[str, _Entry] = {
    "get_time": _Entry(
        Tool(name="get_time", description="Current local date and time of the speaker.",
             parameters={"type": "object", "properties": {}}),
        _get_time,
    ),
    "set_volume": _Entry(
        Tool(name="set_volume", description="Set the speaker volume (0 to 100).",
             parameters={"type": "object", "required": ["level"],
                         "properties": {"level": {"type": "number", "minimum": 0,
                                                  "maximum": 100}}}),
        _set_volume,
    ),
    "mute": _Entry(
        Tool(name="mute", description="Mute (or unmute) the speaker's microphone.",
             parameters={"type": "object",
                         "properties": {"muted": {"type": "boolean"}}}),
        _mute,
    ),
}


def _timer_tool(name: str) -> Callable[[ToolHost, Mapping[str, Any]], Mapping[str, Any]]:
    return lambda host, args: host.timers.call(name, args)


_REGISTRY.update({tool.name: _Entry(tool, _timer_tool(tool.name)) for tool in timers.TOOLS})

TOOL_NAMES = tuple(_REGISTRY)


def declared_tools(names: tuple[str, ...] | list[str]) -> tuple[Tool, ...]:
    """The `Tool` declarations of the named tools, for `session.update`."""
    return tuple(_REGISTRY[name].tool for name in names)


def call_tool(host: ToolHost, enabled: tuple[str, ...] | list[str], name: str,
              arguments: str) -> str:
    """Run one call and return its JSON output; failures become an `{"error": ...}` output.

    The output is bounded whatever the call: peer values are quoted up to MAX_ECHO_CHARS.
    """
    if name not in enabled or name not in _REGISTRY:
        return orjson.dumps({"error": f"unknown tool {_echo(name)}"}).decode()
    if len(arguments) > MAX_ARGUMENTS_CHARS:
        return orjson.dumps(
            {"error": f"arguments too long: {len(arguments)} chars, at most {MAX_ARGUMENTS_CHARS}"}
        ).decode()
    try:
        args = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError as exc:
        return orjson.dumps({"error": f"arguments are not valid JSON: {exc}"}).decode()
    try:
        if not isinstance(args, dict):
            raise ValueError("arguments must be a JSON object")
        result = _REGISTRY[name].run(host, args)
    except ValueError as exc:
        return orjson.dumps({"error": str(exc)}).decode()
    return orjson.dumps(result).decode()


def _echo(value: Any) -> str:
    """`repr(value)` cut to MAX_ECHO_CHARS, for an error output."""
    text = repr(value) if isinstance(value, str | int | float | bool | None) else type(
        value).__name__
    return text if len(text) <= MAX_ECHO_CHARS else f"{text[:MAX_ECHO_CHARS]}...({len(text)} chars)"
