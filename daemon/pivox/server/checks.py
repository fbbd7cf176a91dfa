"""What the local server refuses in client payloads, with the cloud's error codes and params.

`check_session(session, dialect)` and `check_item(item, dialect)` return the first problem as
(code, message, param), where code NOT_IMPLEMENTED marks what pivox serve lacks rather than
what the cloud would refuse (its message names only the thing lacking); `check_item`
returns the item as the server keeps it otherwise.
`GA_PATHS` / `BETA_PATHS` say where a `session.update` names each `SessionConfig` field.
Pure functions over decoded JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pivox.core.events import Dialect

_JSON = dict[str, Any]
MISSING = object()
NOT_IMPLEMENTED = "not_implemented"
# message content part types a client may create, per role and dialect
_PART_TYPES: dict[Dialect, dict[str, tuple[str, ...]]] = {
    "ga": {"user": ("input_text", "input_audio"), "system": ("input_text",),
           "assistant": ("output_text", "output_audio")},
    "beta": {"user": ("input_text", "input_audio"), "system": ("input_text",),
             "assistant": ("text", "audio")},
}
# the keys of a content part the server keeps (audio bytes are not kept)
_PART_KEYS = ("type", "text", "transcript")


def check_item(item: Mapping[str, Any], dialect: Dialect) -> _JSON | tuple[str, str, str]:
    """A created message or function call as the server keeps it (`id` only if given), or
    the problem as (code, message, param); code NOT_IMPLEMENTED for what the server lacks."""
    kind = item.get("type")
    given = {"id": item["id"]} if isinstance(item.get("id"), str) else {}
    if kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            if not isinstance(item.get(key), str):
                return ("missing_required_parameter" if key not in item else "invalid_type",
                        f"Invalid or missing 'item.{key}': expected a string.", f"item.{key}")
        return {**given, "type": "function_call", "status": "completed",
                **{key: item[key] for key in ("call_id", "name", "arguments")}}
    if kind != "message":
        return NOT_IMPLEMENTED, f"Item type {kind!r}", "item.type"
    role = item.get("role")
    allowed = _PART_TYPES[dialect].get(role) if isinstance(role, str) else None
    if allowed is None:
        supported = ", ".join(f"'{r}'" for r in _PART_TYPES[dialect])
        return ("invalid_value", f"Invalid value: {role!r}. Supported values are: {supported}.",
                "item.role")
    content = item.get("content")
    if not isinstance(content, list) or not content:
        return ("invalid_type", "Invalid 'item.content': expected a non-empty array.",
                "item.content")
    parts: list[_JSON] = []
    for index, part in enumerate(content):
        param = f"item.content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            supported = ", ".join(f"'{a}'" for a in allowed)
            return ("invalid_value", f"Invalid value: {kind!r}. Supported values for a {role} "
                    f"message are: {supported}.", f"{param}.type")
        assert isinstance(part, dict)
        kept = {key: part[key] for key in _PART_KEYS if key in part}
        if not all(isinstance(value, str) for value in kept.values()):
            return "invalid_type", f"Invalid '{param}': text must be a string.", param
        if "text" in kind and "text" not in kept:
            return ("missing_required_parameter", f"Missing required parameter: '{param}.text'.",
                    f"{param}.text")
        parts.append(kept)
    return {**given, "type": "message", "status": "completed", "role": role, "content": parts}


# SessionConfig field -> where a session.update names it, per dialect
GA_PATHS: dict[str, tuple[str, ...]] = {
    "instructions": ("instructions",), "voice": ("audio", "output", "voice"),
    "turn_detection": ("audio", "input", "turn_detection"),
    "transcription_model": ("audio", "input", "transcription"),
    "tools": ("tools",), "tool_choice": ("tool_choice",),
}
BETA_PATHS: dict[str, tuple[str, ...]] = {
    **GA_PATHS, "voice": ("voice",), "turn_detection": ("turn_detection",),
    "transcription_model": ("input_audio_transcription",),
}
# (path, allowed values, required) per dialect; a list value must hold only allowed values
_ENUMS: dict[str, tuple[tuple[tuple[str, ...], tuple[object, ...], bool], ...]] = {
    "ga": (
        (("type",), ("realtime",), True),
        (("output_modalities",), ("audio", "text"), False),
        (("audio", "input", "format", "type"), ("audio/pcm", "audio/pcmu", "audio/pcma"), False),
        (("audio", "input", "format", "rate"), (24000,), False),
        (("audio", "output", "format", "type"), ("audio/pcm", "audio/pcmu", "audio/pcma"), False),
        (("audio", "output", "format", "rate"), (24000,), False),
        (("audio", "input", "turn_detection", "type"), ("server_vad", "semantic_vad"), False),
    ),
    "beta": (
        (("modalities",), ("audio", "text"), False),
        (("input_audio_format",), ("pcm16", "g711_ulaw", "g711_alaw"), False),
        (("output_audio_format",), ("pcm16", "g711_ulaw", "g711_alaw"), False),
        (("turn_detection", "type"), ("server_vad", "semantic_vad"), False),
    ),
}
# values the cloud takes that pivox serve does not serve: G.711 audio
_UNSERVED = frozenset({"audio/pcmu", "audio/pcma", "g711_ulaw", "g711_alaw"})
_MODALITIES = {"ga": "output_modalities", "beta": "modalities"}
# (field under turn_detection, minimum, maximum, integer?)
_RANGES = (
    ("threshold", 0.0, 1.0, False),
    ("prefix_padding_ms", 0, None, True),
    ("silence_duration_ms", 0, None, True),
)


def lookup(obj: object, path: tuple[str, ...]) -> object:
    for key in path:
        if not isinstance(obj, Mapping) or key not in obj:
            return MISSING
        obj = obj[key]
    return obj


def check_session(session: object, dialect: Dialect) -> tuple[str, str, str] | None:
    """The first problem of a `session.update` payload as (code, message, param), or None."""
    if not isinstance(session, Mapping):
        return "invalid_type", "Invalid type for 'session': expected an object.", "session"
    if dialect == "beta" and "type" in session:
        return "unknown_parameter", "Unknown parameter: 'session.type'.", "session.type"
    for path, allowed, required in _ENUMS[dialect]:
        value = lookup(session, path)
        param = ".".join(("session", *path))
        if value is MISSING:
            if required:
                return ("missing_required_parameter",
                        f"Missing required parameter: '{param}'.", param)
            continue
        values = value if isinstance(value, list) else [value]
        for one in values:
            if one not in allowed:
                supported = ", ".join(repr(a) for a in allowed)
                return ("invalid_value",
                        f"Invalid value: {one!r}. Supported values are: {supported}.", param)
            if one in _UNSERVED:
                return NOT_IMPLEMENTED, f"Audio format {one!r}", param
    modalities = session.get(_MODALITIES[dialect])
    if isinstance(modalities, list) and "audio" not in modalities:
        param = f"session.{_MODALITIES[dialect]}"
        return NOT_IMPLEMENTED, f"A session without audio ({param} {modalities!r})", param
    turn_path = GA_PATHS["turn_detection"] if dialect == "ga" else BETA_PATHS["turn_detection"]
    for name, low, high, integer in _RANGES:
        value = lookup(session, (*turn_path, name))
        param = ".".join(("session", *turn_path, name))
        kind = "integer" if integer else "decimal"
        if value is MISSING:
            continue
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            return "invalid_type", f"Invalid type for '{param}': expected {kind}.", param
        if value < low:
            return (f"{kind}_below_min_value", f"Invalid '{param}': {kind} below minimum value. "
                    f"Expected a value >= {low}, but got {value} instead.", param)
        if high is not None and value > high:
            return (f"{kind}_above_max_value", f"Invalid '{param}': {kind} above maximum value. "
                    f"Expected a value <= {high}, but got {value} instead.", param)
    return None
