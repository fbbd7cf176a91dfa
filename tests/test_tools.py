"""The local tools: what they change on the device and what they answer the model."""

from __future__ import annotations

import orjson
import pytest

from pivox.config import TOOL_NAMES as CONFIG_TOOL_NAMES
from pivox.skills.registry import TOOL_NAMES, call_tool, declared_tools


class Device:
    """A recording tool host."""

    def __init__(self) -> None:
        self.volume: int | None = None
        self.muted: bool | None = None

    def set_volume(self, level: int) -> None:
        self.volume = level

    def set_muted(self, muted: bool) -> None:
        self.muted = muted


def test_declared_tools_have_json_schema_parameters() -> None:
    tools = declared_tools(TOOL_NAMES)
    assert [t.name for t in tools] == ["get_time", "set_volume", "mute", "set_timer",
                                       "cancel_timer", "list_timers", "set_alarm",
                                       "cancel_alarm", "list_alarms", "snooze", "stop_ringing"]
    assert TOOL_NAMES == CONFIG_TOOL_NAMES
    assert all(t.parameters["type"] == "object" and t.description for t in tools)


def test_set_volume_and_mute_change_the_device() -> None:
    device = Device()
    assert orjson.loads(call_tool(device, TOOL_NAMES, "set_volume", '{"level": 40}')) == {
        "volume": 40}
    assert orjson.loads(call_tool(device, TOOL_NAMES, "mute", "{}")) == {"muted": True}
    assert (device.volume, device.muted) == (40, True)


def test_get_time_answers_the_local_time() -> None:
    answer = orjson.loads(call_tool(Device(), TOOL_NAMES, "get_time", ""))
    assert set(answer) == {"time", "date", "tz"}


@pytest.mark.parametrize(("name", "arguments", "error"), [
    ("launch_rocket", "{}", "unknown tool 'launch_rocket'"),
    ("set_volume", '{"level": 101}', "level must be a number from 0 to 100"),
    ("set_volume", '{"level": true}', "level must be a number from 0 to 100"),
    ("set_volume", "not json", "arguments are not valid json"),
    ("set_volume", "[1]", "arguments must be a json object"),
    ("mute", '{"muted": "yes"}', "muted must be true or false"),
])
def test_bad_calls_answer_an_error_output_and_change_nothing(
    name: str, arguments: str, error: str
) -> None:
    device = Device()
    answer = orjson.loads(call_tool(device, TOOL_NAMES, name, arguments))
    assert error in answer["error"].lower()
    assert (device.volume, device.muted) == (None, None)


def test_a_tool_left_out_of_the_config_is_unknown() -> None:
    answer = orjson.loads(call_tool(Device(), ("get_time",), "mute", "{}"))
    assert answer == {"error": "unknown tool 'mute'"}


@pytest.mark.parametrize(("name", "arguments"), [
    ("x" * 10_000_000, "{}"),
    ("set_volume", "{" + " " * 10_000_000 + "}"),
    ("set_volume", orjson.dumps({"level": "9" * 10_000_000}).decode()),
    ("set_volume", orjson.dumps({"level": "9" * 4000}).decode()),
    ("mute", orjson.dumps({"muted": "y" * 4000}).decode()),
    ("set_volume", "[" * 4000),
])
def test_a_huge_argument_is_never_echoed_back(name: str, arguments: str) -> None:
    device = Device()
    output = call_tool(device, TOOL_NAMES, name, arguments)
    assert len(output) < 200 and "error" in orjson.loads(output)
    assert (device.volume, device.muted) == (None, None)
