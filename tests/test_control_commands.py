"""The command model both doors share: one table of valid and hostile inputs."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivox.control.commands import (
    COMMAND_NAMES,
    MAX_TEXT_CHARS,
    Command,
    Refused,
    parse_command,
    run_command,
)
from pivox.control.socket import handle_line
from tests.control_host import RecordingHost

VALID: list[tuple[str, Any, bool, Any]] = [
    ("mute", True, False, True),
    ("mute", False, False, False),
    ("mute", "ON", True, True),
    ("mute", "off", True, False),
    ("mute", "1", True, True),
    ("volume", 42, False, 42),
    ("volume", 0, False, 0),
    ("volume", 100, False, 100),
    ("volume", 41.6, False, 42),
    ("volume", "42.0", True, 42),
    ("volume", " 7 ", True, 7),
    ("say", "Front door opened", False, "Front door opened"),
    ("say", "two\nlines\x00 and\ttabs", True, "two lines and tabs"),
    ("ask", "Did you take your pills?", True, "Did you take your pills?"),
    ("wake_word", "hey_jarvis", False, "hey_jarvis"),
    ("wake_word", "alexa\n", True, "alexa"),
    ("stop", None, False, None),
    ("stop", "PRESS", True, None),
    ("converse", None, False, None),
    ("status", None, False, None),
    ("timers", None, False, None),
]


@pytest.mark.parametrize(("name", "value", "text", "expected"), VALID)
def test_valid_commands_parse(name: str, value: Any, text: bool, expected: Any) -> None:
    assert parse_command(name, value, text=text) == Command(name=name, value=expected)  # type: ignore[arg-type]


HOSTILE: list[tuple[Any, Any, bool, str]] = [
    ("reboot", None, False, "unknown command 'reboot'"),
    (None, None, False, "unknown command None"),
    (["mute"], None, False, "unknown command list"),
    ("x" * 10_000, None, False, "unknown command 'xxxx"),
    ("mute", "ON", False, "expected on or off"),
    ("mute", 1, False, "expected on or off"),
    ("mute", "maybe", True, "expected on or off"),
    ("mute", "ON" * 10_000, True, "chars)"),
    ("volume", 101, False, "from 0 to 100"),
    ("volume", -1, False, "from 0 to 100"),
    ("volume", True, False, "from 0 to 100"),
    ("volume", float("nan"), False, "from 0 to 100"),
    ("volume", "nan", True, "from 0 to 100"),
    ("volume", "1e999", True, "from 0 to 100"),
    ("volume", "loud", True, "from 0 to 100"),
    ("volume", "4" * 100_000, True, "from 0 to 100"),
    ("volume", {"level": 4}, False, "got dict"),
    ("say", "", False, "some text"),
    ("say", " \n\x00 ", True, "some text"),
    ("say", 42, False, "expected text"),
    ("say", "a" * (MAX_TEXT_CHARS + 1), False, "too long"),
    ("wake_word", "hey_siri", True, "expected one of okay_nabu"),
    ("wake_word", 3, False, "expected one of"),
    ("stop", "x" * 1000, True, "takes no argument"),
    ("status", 3, False, "takes no argument"),
]


@pytest.mark.parametrize(("name", "value", "text", "words"), HOSTILE)
def test_hostile_input_is_refused_with_a_bounded_message(
        name: Any, value: Any, text: bool, words: str) -> None:
    result = parse_command(name, value, text=text)
    assert isinstance(result, Refused)
    assert words in result.message
    assert len(result.message) < 200


def test_run_command_changes_the_host_and_reports_status() -> None:
    host = RecordingHost()
    for name, value in [("mute", True), ("volume", 30), ("say", "hi"), ("ask", "ok?"),
                        ("stop", None), ("converse", None)]:
        command = parse_command(name, value)
        assert isinstance(command, Command)
        reply = run_command(host, command)
        assert reply.ok
    assert host.calls == [("mute", True), ("volume", 30), ("say", "hi"), ("ask", "ok?"),
                          ("stop", None), ("converse", None)]
    status = run_command(host, Command(name="status")).to_json()["status"]
    assert status["muted"] is True and status["volume"] == 30
    assert status["timers"] == [{"name": "tea", "due_in_s": 90.0}]
    timers = run_command(host, Command(name="timers")).to_json()
    assert timers == {"ok": True, "timers": [{"name": "tea", "due_in_s": 90.0}]}


def test_a_refusal_from_the_host_is_an_error_reply() -> None:
    host = RecordingHost(refuse="announcement queue full")
    reply = run_command(host, Command(name="say", value="hi")).to_json()
    assert reply == {"ok": False, "error": "announcement queue full"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10,
)


@settings(max_examples=500, deadline=None)
@given(name=st.one_of(st.sampled_from(COMMAND_NAMES), json_values), value=json_values,
       text=st.booleans())
def test_any_input_is_a_command_or_a_bounded_refusal(name: Any, value: Any, text: bool) -> None:
    result = parse_command(name, value, text=text)
    assert isinstance(result, Command | Refused)
    if isinstance(result, Refused):
        assert len(result.message) < 300


@settings(max_examples=500, deadline=None)
@given(line=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_socket_line_gets_a_reply(line: bytes) -> None:
    reply = handle_line(RecordingHost(), line).to_json()
    assert isinstance(reply["ok"], bool)
    orjson.dumps(reply)  # always serialisable
