"""The MCP bridge end to end: the daemon on real PulseAudio and the GPIO double, the bundled
realtime server calling a Home Assistant tool (`tool_call="HassTurnOn"`), and a real MCP server
from the `mcp` SDK (tests/mcp_home.py) in Home Assistant's mode.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

from pivox.core.events import FunctionCallOutput, SessionUpdate
from pivox.core.machine import State
from pivox.protocol.gemini import Setup, ToolResponse
from pivox.skills.registry import TOOL_NAMES
from tests.daemon_harness import BUTTON, running, wait_until
from tests.gpio_double import GpioDouble
from tests.mcp_home import TOKEN, Knobs, McpHome
from tests.pulse import PulseAudio
from tests.test_daemon_providers import PROVIDERS, Served, serve

LIGHT_ON = '{"name": "kitchen light"}'


def mcp_server(home: McpHome, **keys: Any) -> str:
    """A `--set mcp.servers=[...]` override for `home`, the token from $PIVOX_TEST_HA_TOKEN."""
    table = {"name": "home", "url": home.url, "token_env": "PIVOX_TEST_HA_TOKEN", **keys}
    fields = ", ".join(f"{key} = {orjson.dumps(value).decode()}" for key, value in table.items())
    return f"mcp.servers=[{{ {fields} }}]"


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIVOX_TEST_HA_TOKEN", TOKEN)


def declared(served: Served) -> list[list[str]]:
    """The tool names of every session configuration the server received, in order."""
    sessions = [m.session for index in range(len(served.server.connections))
                for m in served.received(index) if isinstance(m, SessionUpdate | Setup)]
    return [[tool.name for tool in session.tools] for session in sessions]


def outputs(served: Served) -> list[str]:
    """The function outputs the server received, over every connection."""
    found = []
    for index in range(len(served.server.connections)):
        for message in served.received(index):
            if isinstance(message, FunctionCallOutput):
                found.append(message.output)
            elif isinstance(message, ToolResponse):
                found += [str(response[2]) for response in message.responses]
    return found


async def talk(daemon: Any, gpio: GpioDouble, mic: Any, turns: int) -> None:
    """One push-to-talk turn; wait until the reply played."""
    from tests.fixtures_server import pcm_tone

    mic.play(pcm_tone(700))
    gpio.press(BUTTON)
    await asyncio.sleep(0.6)
    gpio.release(BUTTON)
    await wait_until(lambda: daemon.stats["turns"] == turns, 15, "the tool's answer played")


async def ready(served: Served, daemon: Any, name: str = "HassTurnOn") -> None:
    """Wait until the session the server holds declares `name` and the device is idle."""
    await wait_until(lambda: any(name in tools for tools in declared(served)), 10,
                     f"{name} declared")
    await wait_until(lambda: daemon.machine.state is State.IDLE, 10, "idle")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_turn_on_the_kitchen_light(provider: str, gpio_double: GpioDouble, mic: Any,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pivox")
    async with McpHome() as home, serve(provider, reply_ms=300, tool_call="HassTurnOn",
                                        tool_arguments=LIGHT_ON) as served, running(
        served.config("push_to_talk", mcp_server(home)), gpio_double
    ) as (daemon, led):
        await ready(served, daemon)
        tools = declared(served)[-1]
        assert tools[:3] == ["get_time", "set_volume", "mute"]
        assert {"HassTurnOn", "HassTurnOff", "HassLightSet", "GetLiveContext"} <= set(tools)
        assert home.entities["kitchen light"].state == "off"
        await talk(daemon, gpio_double, mic, 1)
        assert home.entities["kitchen light"].state == "on"
        assert home.calls == [("HassTurnOn", {"name": "kitchen light"})]
        (output,) = outputs(served)
        assert "action_done" in orjson.loads(output)["result"]
        replies = [r.getMessage() for r in caplog.records if r.getMessage().startswith(
            "assistant: ")]
        assert any("The HassTurnOn tool said:" in r and "action_done" in r for r in replies)
        assert led.states[-1] == "idle"


async def test_a_list_change_reaches_the_next_session_update(gpio_double: GpioDouble,
                                                             mic: Any) -> None:
    async with McpHome() as home, serve("openai", reply_ms=300) as served, running(
        served.config("push_to_talk", mcp_server(home, tools=["Hass*"])), gpio_double
    ) as (daemon, _led):
        await ready(served, daemon)
        assert "GetLiveContext" not in declared(served)[-1]  # the allowlist
        home.knobs.extra = {"HassClimateSetTemperature": ("Sets a thermostat", {
            "type": "object", "properties": {"temperature": {"type": "number"}}})}
        daemon.link.reconnect()  # a new realtime connection re-lists the tools
        await ready(served, daemon, "HassClimateSetTemperature")


async def test_a_slow_tool_answers_a_timeout_and_the_turn_completes(
        gpio_double: GpioDouble, mic: Any) -> None:
    async with McpHome(Knobs(slow_s=5.0)) as home, serve(
        "openai", reply_ms=300, tool_call="HassTurnOn", tool_arguments=LIGHT_ON
    ) as served, running(served.config("push_to_talk", mcp_server(home, timeout_s=1.0)),
                         gpio_double) as (daemon, led):
        await ready(served, daemon)
        await talk(daemon, gpio_double, mic, 1)
        assert outputs(served) == ['{"error":"home did not answer in 1 s"}']
        assert led.states[-1] == "idle"


@pytest.mark.parametrize(("knob", "said"), [
    ({"status": 401}, "home refused the token"),
    ({"status": 500}, "home failed (HTTP 500)"),
    ({"redirect_to": "http://127.0.0.2:9/api/mcp"},
     "home redirected to another address, which pivox does not follow"),
])
async def test_a_failing_server_is_an_output_the_model_can_say(
        knob: dict[str, Any], said: str, gpio_double: GpioDouble, mic: Any) -> None:
    async with McpHome() as home, serve(
        "openai", reply_ms=300, tool_call="HassTurnOn", tool_arguments=LIGHT_ON
    ) as served, running(served.config("push_to_talk", mcp_server(home)), gpio_double) as (
            daemon, _led):
        await ready(served, daemon)
        for key, value in knob.items():
            setattr(home.knobs, key, value)
        await talk(daemon, gpio_double, mic, 1)
        assert outputs(served) == [orjson.dumps({"error": said}).decode()]
        assert home.entities["kitchen light"].state == "off"


async def test_down_at_start_then_back(gpio_double: GpioDouble, mic: Any,
                                       caplog: pytest.LogCaptureFixture) -> None:
    home = McpHome()  # not started: nothing listens on its port yet
    async with serve("openai", reply_ms=300, tool_call="HassTurnOn",
                     tool_arguments=LIGHT_ON) as served, running(
        served.config("push_to_talk", mcp_server(home)), gpio_double
    ) as (daemon, _led):
        await wait_until(lambda: daemon.machine.state is State.IDLE, what="idle without MCP")
        await wait_until(lambda: any(r.getMessage().startswith("MCP server home cannot be")
                                     for r in caplog.records), what="one line says so")
        assert declared(served) == [list(TOOL_NAMES)]  # the local tools only
        async with home:
            daemon.link.reconnect()  # a realtime reconnect tries a server that is down now
            await ready(served, daemon)  # added to the session when it answers
            await talk(daemon, gpio_double, mic, 1)
            assert home.entities["kitchen light"].state == "on"
        # gone again mid-session: its tools answer an error at once (a new realtime
        # connection, so the bundled server calls the tool again)
        daemon.link.reconnect()
        await wait_until(lambda: len(served.server.connections) == 3, what="reconnected")
        await ready(served, daemon)
        await talk(daemon, gpio_double, mic, 2)
        assert "home cannot be reached" in outputs(served)[-1]


async def test_barge_in_during_a_call_cancels_it(gpio_double: GpioDouble, mic: Any) -> None:
    from tests.fixtures_server import pcm_tone

    async with McpHome(Knobs(slow_s=3.0)) as home, serve(
        "openai", reply_ms=300, tool_call="HassTurnOn", tool_arguments=LIGHT_ON
    ) as served, running(served.config("always_on", mcp_server(home)), gpio_double) as (
            daemon, _led):
        await wait_until(lambda: any("HassTurnOn" in t for t in declared(served)), 10, "tools")
        await wait_until(lambda: daemon.machine.state is State.LISTENING, what="listening")
        mic.play(pcm_tone(600))
        await wait_until(lambda: bool(home.calls), 10, "the call reached the server")
        assert daemon.machine.state is State.THINKING
        mic.play(pcm_tone(600))  # the user speaks again while the call runs
        await wait_until(lambda: not daemon.mcp.running, 5, "the call was cancelled")
        await asyncio.sleep(3.5)  # past the tool's answer: no output was sent for it
        assert outputs(served) == []


async def test_the_token_is_nowhere_in_debug_logs(
        gpio_double: GpioDouble, mic: Any, caplog: pytest.LogCaptureFixture,
        live_pulse: PulseAudio) -> None:
    caplog.set_level(logging.DEBUG)  # no redaction filter here: the raw records
    caplog.set_level(logging.DEBUG, "httpx2")  # an earlier bridge may have quietened it
    async with McpHome() as home, serve("openai", reply_ms=300, tool_call="HassTurnOn",
                                        tool_arguments=LIGHT_ON) as served, running(
        served.config("push_to_talk", mcp_server(home), "log.level=debug"), gpio_double
    ) as (daemon, _led):
        await ready(served, daemon)
        home.knobs.status = 401
        await talk(daemon, gpio_double, mic, 1)
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "HassTurnOn" in text and "refused the token" in text
    assert "HTTP Request: POST" in text  # httpx2's own debug lines were there to leak it
    assert TOKEN not in text
    assert TOKEN.split(".")[1] not in text  # not even a part of it


async def test_a_hostile_tool_list_is_bounded_and_the_daemon_fine(
        gpio_double: GpioDouble, mic: Any, caplog: pytest.LogCaptureFixture) -> None:
    knobs = Knobs(filler_tools=2000, huge_description=True, invalid_schema=True, get_time=True,
                  page_size=500)
    async with McpHome(knobs) as home, serve(
        "openai", reply_ms=300, tool_call="HassTurnOn", tool_arguments=LIGHT_ON
    ) as served, running(served.config("push_to_talk", mcp_server(home, use_prompt=True)),
                         gpio_double) as (daemon, _led):
        await ready(served, daemon)
        (session,) = [m.session for m in served.received() if isinstance(m, SessionUpdate)
                      and any(t.name == "HassTurnOn" for t in m.session.tools)]
        names = [tool.name for tool in session.tools]
        assert len(names) == 128  # the session's limit, local tools included
        assert names[:3] == ["get_time", "set_volume", "mute"]
        assert "home_get_time" in names and "HassBroken" not in names
        assert max(len(tool.description) for tool in session.tools) <= 1024
        assert session.instructions.endswith("Answer questions about the home.")
        left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
        assert len(left_out) == 1 and "HassBroken: the input schema is invalid" in left_out[0]
        assert len(left_out[0]) < 1000
        await talk(daemon, gpio_double, mic, 1)
        assert home.entities["kitchen light"].state == "on"


async def test_tools_list_changed_reaches_the_session(gpio_double: GpioDouble, mic: Any) -> None:
    # a server with sessions and SSE (not Home Assistant's mode) can notify a list change
    async with McpHome(Knobs(stateful=True)) as home, serve(
        "openai", reply_ms=300, tool_call="HassTurnOn", tool_arguments=LIGHT_ON
    ) as served, running(served.config("push_to_talk", mcp_server(home)), gpio_double) as (
            daemon, _led):
        await ready(served, daemon)
        connections = len(served.server.connections)
        await talk(daemon, gpio_double, mic, 1)  # the call makes the server add a tool
        await wait_until(lambda: any("HassListAddItem" in t for t in declared(served)), 5,
                         "the new tool in a session.update")
        assert len(served.server.connections) == connections  # no reconnect needed


async def test_a_link_drop_during_a_call_cancels_it(gpio_double: GpioDouble, mic: Any) -> None:
    from tests.fixtures_server import pcm_tone

    async with McpHome(Knobs(slow_s=3.0)) as home, serve(
        "openai", reply_ms=300, tool_call="HassTurnOn", tool_arguments=LIGHT_ON
    ) as served, running(served.config("push_to_talk", mcp_server(home),
                                       "session.response_timeout_s=2"), gpio_double) as (
            daemon, _led):
        await ready(served, daemon)
        mic.play(pcm_tone(700))
        gpio_double.press(BUTTON)
        await asyncio.sleep(0.6)
        gpio_double.release(BUTTON)
        await wait_until(lambda: bool(home.calls), 10, "the call reached the server")
        daemon.link.reconnect()
        await wait_until(lambda: len(served.server.connections) == 2, what="a new connection")
        await wait_until(lambda: not daemon.mcp.running, 5, "the call was cancelled")
        await asyncio.sleep(3.5)  # past the tool's answer: no output went to either session
        assert outputs(served) == []
        await wait_until(lambda: daemon.machine.state is State.IDLE, 10, "idle again")
