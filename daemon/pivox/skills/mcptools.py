"""What of an MCP server's tool list the model is offered, and what of a result it hears (pure).

A server's tools, descriptions, schemas and results are peer data: everything here is bounded
in size and depth before it reaches the session, and a tool the realtime providers would
reject (a name outside `[A-Za-z0-9_-]{1,64}`, a schema that is no object schema) is left out
with a reason the bridge logs in one line. A name that collides with a local tool or an
earlier server's becomes `<server>_<tool>`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pivox.core.events import Tool

MAX_TOOLS = 128
"""Tools offered to the model from all servers together (OpenAI's session limit is 128)."""
MAX_LISTED = 4096
"""Tools read from one server's listing, all pages together; the rest is not even looked at."""
MAX_PAGES = 64
"""tools/list pages read from one server: a cursor that never ends cannot hang the bridge."""
MAX_DESCRIPTION_CHARS = 1024
"""Longest tool description offered; Home Assistant's are a sentence or two."""
MAX_SCHEMA_CHARS = 8192
"""Longest input schema (as JSON); a larger one leaves its tool out."""
MAX_SCHEMA_DEPTH = 12
"""Deepest nesting of an input schema's objects and arrays; deeper leaves its tool out."""
MAX_PROMPT_CHARS = 4096
"""Most of a server's prompt appended to the instructions."""
MAX_OUTPUT_CHARS = 4096
"""Longest function output made of a tool's result: the model reads it, the speaker says it."""

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteTool:
    """A tool of one server as the model sees it (`tool.name` may be `<server>_<name>`)."""

    server: str
    name: str
    tool: Tool


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The tools offered from one server, and why the others were left out."""

    tools: tuple[RemoteTool, ...]
    left_out: tuple[str, ...]
    """One reason per tool left out, `name: why` (bounded names)."""


def allowed(name: str, patterns: Sequence[str]) -> bool:
    """True when `name` matches one of the glob `patterns` (case-sensitive)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def select_tools(server: str, listed: Iterable[Mapping[str, Any]], patterns: Sequence[str],
                 taken: set[str], room: int = MAX_TOOLS) -> Selection:
    """The tools of `listed` (raw `tools/list` entries) to offer, in order, at most `room`.

    `taken` holds the names already offered (local tools, earlier servers) and receives the
    new ones. A tool not matching `patterns` is skipped silently: the user chose that.
    """
    tools: list[RemoteTool] = []
    left_out: list[str] = []
    over = 0
    for entry in listed:
        name = entry.get("name")
        if not isinstance(name, str):
            left_out.append(f"{_short(repr(name))}: no name")
            continue
        if not allowed(name, patterns):
            continue
        shown = _short(name)
        if not _NAME.fullmatch(name):
            left_out.append(f"{shown}: the name is not 1-64 letters, digits, '_' or '-'")
            continue
        exposed = name if name not in taken else f"{server}_{name}"
        if exposed in taken or not _NAME.fullmatch(exposed):
            left_out.append(f"{shown}: its name collides and {_short(exposed)} is no way out")
            continue
        schema, why = _schema(entry.get("inputSchema", entry.get("input_schema")))
        if schema is None:
            left_out.append(f"{shown}: {why}")
            continue
        if len(tools) >= room:
            over += 1
            continue
        description = entry.get("description")
        text = description if isinstance(description, str) else ""
        taken.add(exposed)
        tools.append(RemoteTool(server=server, name=name, tool=Tool(
            name=exposed, description=_bounded(text.strip(), MAX_DESCRIPTION_CHARS),
            parameters=schema)))
    if over:
        left_out.append(f"{over} more tools: over the session's limit of {MAX_TOOLS} tools")
    return Selection(tools=tuple(tools), left_out=tuple(left_out))


def _schema(value: Any) -> tuple[dict[str, Any] | None, str]:
    """The schema to offer (a copy), or None and why a provider would refuse it."""
    if value is None or value == {}:
        return {"type": "object", "properties": {}}, ""
    if not isinstance(value, dict):
        return None, "the input schema is not an object"
    if value.get("type", "object") != "object":
        return None, "the input schema is not of type object"
    try:
        text = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return None, "the input schema is not JSON"
    if len(text) > MAX_SCHEMA_CHARS:
        return None, f"the input schema is {len(text)} bytes, over {MAX_SCHEMA_CHARS}"
    problem = _check_node(value, 0)
    if problem:
        return None, f"the input schema is invalid: {problem}"
    schema: dict[str, Any] = orjson.loads(text)
    schema.setdefault("type", "object")
    return schema, ""


def _check_node(node: Any, depth: int) -> str:
    """What makes a (sub)schema invalid, or empty; `depth` counts nested schemas."""
    if depth > MAX_SCHEMA_DEPTH:
        return f"nested deeper than {MAX_SCHEMA_DEPTH}"
    if isinstance(node, bool):
        return ""  # `true` / `false` are schemas too
    if not isinstance(node, dict):
        return "a schema is not an object"
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if not all(isinstance(k, str) and k in _TYPES for k in kinds):
        return f"type {_short(repr(kind))}"
    required = node.get("required")
    if required is not None and not (isinstance(required, list) and all(
            isinstance(item, str) for item in required)):
        return "required is not a list of names"
    for key, sub in _subschemas(node):
        if sub is _BAD:
            return f"{key} is not {'an object of schemas' if key in _MAPS else 'a schema'}"
        problem = _check_node(sub, depth + 1)
        if problem:
            return problem
    return ""


_BAD = object()
_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SINGLE = ("items", "additionalProperties", "not", "contains")


def _subschemas(node: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    """The schemas nested in `node` by the JSON Schema keywords that hold schemas."""
    for key in _MAPS:
        value = node.get(key)
        if value is not None:
            yield from ((key, sub) for sub in value.values()) if isinstance(value, dict) else [
                (key, _BAD)]
    for key in _LISTS:
        value = node.get(key)
        if value is not None:
            yield from ((key, sub) for sub in value) if isinstance(value, list) else [
                (key, _BAD)]
    for key in _SINGLE:
        value = node.get(key)
        if value is not None:
            yield key, value if isinstance(value, dict | bool) else _BAD


def prompt_text(messages: Iterable[Mapping[str, Any]]) -> str:
    """The text of a `prompts/get` result's messages, bounded to MAX_PROMPT_CHARS."""
    parts = [_text_of(message.get("content")) for message in messages]
    return _bounded("\n".join(part for part in parts if part).strip(), MAX_PROMPT_CHARS)


def result_output(content: Iterable[Mapping[str, Any]], structured: Any, is_error: bool) -> str:
    """The function output of a `tools/call` result: its text content, bounded, as JSON.

    A result the server marks as an error comes back as `{"error": text}`, so the model can
    say what went wrong; non-text blocks are named, not passed on.
    """
    parts = [_text_of(block) for block in content]
    text = "\n".join(part for part in parts if part)
    if not text and structured is not None:
        text = orjson.dumps(structured, default=str).decode()
    text = _bounded(text, MAX_OUTPUT_CHARS)
    return orjson.dumps({"error": text or "the tool failed"} if is_error else {
        "result": text}).decode()


def error_output(message: str) -> str:
    """An output the model can say, for a call that did not reach a result."""
    return orjson.dumps({"error": message}).decode()


def _text_of(block: Any) -> str:
    if not isinstance(block, Mapping):
        return ""
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return _bounded(text, MAX_OUTPUT_CHARS) if isinstance(text, str) else ""
    return f"[{_short(str(kind))} content left out]"


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(text: str) -> str:
    return _bounded(text, 64)
