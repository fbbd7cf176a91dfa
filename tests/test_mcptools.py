"""pivox.skills.mcptools: what of a server's tool list is offered, and what a result becomes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivox.skills.mcptools import (
    MAX_DESCRIPTION_CHARS,
    MAX_OUTPUT_CHARS,
    MAX_TOOLS,
    allowed,
    prompt_text,
    result_output,
    select_tools,
)

LIGHT = {"name": "HassTurnOn", "description": "Turns on a device",
         "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}


def tool(name: str, schema: Any = None, description: str = "d") -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "description": description}
    if schema is not None:
        entry["inputSchema"] = schema
    return entry


def test_a_home_assistant_tool_is_offered_as_is() -> None:
    taken = {"get_time"}
    selection = select_tools("home", [LIGHT], ["*"], taken)
    (remote,) = selection.tools
    assert (remote.server, remote.name, remote.tool.name) == ("home", "HassTurnOn", "HassTurnOn")
    assert remote.tool.parameters == LIGHT["inputSchema"]
    assert remote.tool.description == "Turns on a device"
    assert taken == {"get_time", "HassTurnOn"} and selection.left_out == ()


def test_a_colliding_name_gets_the_server_prefix_and_a_second_collision_is_left_out() -> None:
    taken = {"get_time", "home_mute", "mute"}
    selection = select_tools("home", [tool("get_time"), tool("mute")], ["*"], taken)
    assert [t.tool.name for t in selection.tools] == ["home_get_time"]
    assert [t.name for t in selection.tools] == ["get_time"]
    assert selection.left_out == ("mute: its name collides and home_mute is no way out",)


def test_the_glob_allowlist() -> None:
    listed = [tool("HassTurnOn"), tool("HassTurnOff"), tool("GetLiveContext"), tool("Script1")]
    offered = select_tools("h", listed, ["Hass*", "GetLiveContext"], set()).tools
    assert [t.tool.name for t in offered] == ["HassTurnOn", "HassTurnOff", "GetLiveContext"]
    assert allowed("HassTurnOn", ["hass*"]) is False  # case-sensitive


@pytest.mark.parametrize(("schema", "why"), [
    ({"type": "object", "properties": "oops"}, "properties is not an object of schemas"),
    ({"type": "array"}, "not of type object"),
    ("object", "not an object"),
    ({"type": "object", "properties": {"a": {"type": "strin"}}}, "type 'strin'"),
    ({"type": "object", "required": "a"}, "required is not a list"),
    ({"type": "object", "properties": {"a": {"items": 3}}}, "items is not a schema"),
    ({"type": "object", "anyOf": {"a": 1}}, "anyOf is not a schema"),
])
def test_a_schema_a_provider_would_refuse_leaves_its_tool_out(schema: Any, why: str) -> None:
    selection = select_tools("h", [tool("Bad", schema), LIGHT], ["*"], set())
    assert [t.tool.name for t in selection.tools] == ["HassTurnOn"]
    (reason,) = selection.left_out
    assert reason.startswith("Bad: ") and why in reason


def test_a_property_named_type_is_no_type() -> None:
    schema = {"type": "object", "properties": {"type": {"type": "string"}}}
    assert select_tools("h", [tool("T", schema)], ["*"], set()).tools[0].tool.parameters == schema


def test_no_schema_is_an_empty_object_schema() -> None:
    (offered,) = select_tools("h", [tool("NoArgs")], ["*"], set()).tools
    assert offered.tool.parameters == {"type": "object", "properties": {}}


def test_depth_size_names_and_count_are_bounded() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(40):
        deep = {"type": "object", "properties": {"a": deep}}
    big = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(2000)}}
    listed = [tool("Deep", deep), tool("Big", big), tool("bad name!"), tool("x" * 65),
              tool("Huge", description="x" * 1_000_000), {"name": 7},
              *(tool(f"F{i}") for i in range(2000))]
    selection = select_tools("h", listed, ["*"], set())
    names = [t.tool.name for t in selection.tools]
    assert names[0] == "Huge" and len(names) == MAX_TOOLS
    assert len(selection.tools[0].tool.description) == MAX_DESCRIPTION_CHARS
    reasons = " | ".join(selection.left_out)
    for needle in ("Deep: the input schema is invalid: nested deeper", "Big: the input schema is",
                   "bad name!: the name", "7: no name",
                   "1873 more tools: over the session's limit of 128"):
        assert needle in reasons
    assert len(selection.left_out) == 6 and all(len(r) < 200 for r in selection.left_out)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=30))
def test_any_peer_schema_is_offered_or_left_out_never_raises(schema: Any) -> None:
    selection = select_tools("h", [{"name": "T", "inputSchema": schema, "description": schema}],
                             ["*"], set())
    assert len(selection.tools) + len(selection.left_out) == 1
    for offered in selection.tools:
        assert offered.tool.parameters.get("type") == "object"
        orjson.dumps(offered.tool.parameters)


def test_a_result_becomes_bounded_text() -> None:
    out = orjson.loads(result_output([{"type": "text", "text": "on"},
                                      {"type": "image", "data": "AAAA"}], None, False))
    assert out == {"result": "on\n[image content left out]"}
    out = orjson.loads(result_output([{"type": "text", "text": "y" * 10**6}], None, False))
    assert len(out["result"]) == MAX_OUTPUT_CHARS
    assert orjson.loads(result_output([], {"temp": 21}, False)) == {"result": '{"temp":21}'}
    assert orjson.loads(result_output([{"type": "text", "text": "no such area"}], None, True)) == {
        "error": "no such area"}


def test_prompts_are_bounded() -> None:
    text = prompt_text([{"role": "assistant", "content": {"type": "text", "text": "Be brief."}}])
    assert text == "Be brief."
    assert len(prompt_text([{"content": {"type": "text", "text": "p" * 10**6}}])) == 4096
