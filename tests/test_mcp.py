"""pivox.skills.mcp: the bridge on a real MCP server (tests/mcp_home.py), without the daemon."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from pivox.config import McpServerSettings
from pivox.net.secrets import ApiKey
from pivox.skills.mcp import McpBridge
from tests.daemon_harness import wait_until
from tests.mcp_home import TOKEN, Knobs, McpHome


@asynccontextmanager
async def bridge(home: McpHome, changes: list[int] | None = None,
                 **settings: Any) -> AsyncIterator[McpBridge]:
    """A running bridge to `home` with its tools listed."""
    server = McpServerSettings(name="home", url=home.url, **settings)
    changed = changes if changes is not None else []
    mcp = McpBridge([server], {"home": ApiKey(TOKEN, source="test")}, reserved=["get_time"],
                    on_change=lambda: changed.append(1))
    task = asyncio.create_task(mcp.run())
    try:
        await wait_until(lambda: bool(mcp.tools()), 10, "tools listed")
        yield mcp
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def result(output: str) -> Any:
    return orjson.loads(orjson.loads(output)["result"])


async def test_several_calls_run_at_once() -> None:
    async with McpHome(Knobs(slow_s=0.5)) as home, bridge(home) as mcp:
        start = time.monotonic()
        outputs = await asyncio.gather(*(mcp.call("GetLiveContext", "{}") for _ in range(5)))
        assert time.monotonic() - start < 1.5  # not 5 x 0.5 s one after the other
        assert all(result(output)["success"] for output in outputs)
        assert len(home.calls) == 5


async def test_a_cancelled_call_stops_and_the_next_one_works() -> None:
    async with McpHome(Knobs(slow_s=1.0)) as home, bridge(home) as mcp:
        call = asyncio.create_task(mcp.call("HassTurnOn", '{"name": "kitchen light"}'))
        await wait_until(lambda: bool(home.calls), 5, "the call reached the server")
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        assert call.cancelled()
        await wait_until(lambda: not mcp.links[0]._pending, 2, "nothing left pending")
        home.knobs.slow_s = 0
        output = await mcp.call("HassTurnOff", '{"name": "kitchen light"}')
        assert result(output)["response_type"] == "action_done"


async def test_bad_arguments_never_reach_the_server() -> None:
    async with McpHome() as home, bridge(home) as mcp:
        for arguments, error in [("{", "not valid JSON"), ("[1]", "a JSON object"),
                                 ("x" * 5000, "too long")]:
            assert error in orjson.loads(await mcp.call("HassTurnOn", arguments))["error"]
        assert "unknown tool" in orjson.loads(await mcp.call("Nope", "{}"))["error"]
        assert home.calls == []


async def test_pages_are_all_read_and_a_collision_is_renamed() -> None:
    async with McpHome(Knobs(page_size=2, get_time=True)) as home, bridge(home) as mcp:
        names = [tool.name for tool in mcp.tools()]
        assert names == ["HassTurnOn", "HassTurnOff", "HassLightSet", "GetLiveContext",
                         "home_get_time"]
        await mcp.call("home_get_time", "{}")
        assert home.calls == [("get_time", {})]  # called by its own name on the server


async def test_a_server_that_comes_back_with_other_tools_changes_the_session() -> None:
    changes: list[int] = []
    async with McpHome() as home, bridge(home, changes, tools=["Hass*"]) as mcp:
        assert len(changes) == 1 and len(mcp.tools()) == 3
        await home.stop()
        down = orjson.loads(await mcp.call("HassTurnOn", "{}"))["error"]
        assert down.startswith("home cannot be reached")
        start = time.monotonic()
        assert orjson.loads(await mcp.call("HassTurnOn", "{}"))["error"].startswith("home ")
        assert time.monotonic() - start < 0.1  # at once while it is down
        assert len(mcp.tools()) == 3  # still offered: the model hears why it failed
        home.knobs.extra = {"HassMediaPause": ("Pauses", {"type": "object"})}
        await home.start()
        await wait_until(lambda: len(mcp.tools()) == 4, 15, "the new tool once it is back")
        assert len(changes) == 2


async def test_the_older_sse_transport() -> None:
    async with McpHome(sse=True) as home, bridge(home, transport="sse") as mcp:
        assert [tool.name for tool in mcp.tools()] == ["HassTurnOn", "GetLiveContext"]
        output = await mcp.call("HassTurnOn", '{"name": "kitchen light"}')
        assert result(output)["response_type"] == "action_done"
        assert home.entities["kitchen light"].state == "on"
        await home.stop()  # the event stream ends; the next call hears so at once
        start = time.monotonic()
        assert orjson.loads(await mcp.call("HassTurnOn", "{}"))["error"].startswith("home ")
        await wait_until(lambda: not mcp.links[0].up, 2, "down: reconnecting")
        assert "cannot be reached" in orjson.loads(await mcp.call("HassTurnOn", "{}"))["error"]
        assert time.monotonic() - start < 2
        await home.start()
        await wait_until(lambda: mcp.links[0].up, 15, "back")
        assert result(await mcp.call("GetLiveContext", "{}"))["success"]


async def test_a_huge_answer_is_refused_and_the_bridge_carries_on() -> None:
    async with McpHome(Knobs(result_bytes=20 * 2**20)) as home, bridge(home) as mcp:
        error = orjson.loads(await mcp.call("GetLiveContext", "{}"))["error"]
        assert error.startswith("home ") and "over 16 MB" in error
        home.knobs.result_bytes = 0
        await wait_until(lambda: mcp.links[0].up, 15, "up again")
        assert result(await mcp.call("GetLiveContext", "{}"))["success"]
        assert result(await mcp.call("GetLiveContext", "{}"))["success"]


async def test_use_prompt_on_a_server_without_prompts_keeps_its_tools() -> None:
    async with McpHome(sse=True) as home, bridge(home, transport="sse", use_prompt=True) as mcp:
        assert mcp.prompts() == () and len(mcp.tools()) == 2


async def test_use_prompt_reads_the_prompt() -> None:
    async with McpHome() as home, bridge(home, use_prompt=True) as mcp:
        assert mcp.prompts() == ("You are a voice assistant for Home Assistant. Answer "
                                 "questions about the home.",)
