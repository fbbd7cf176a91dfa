"""The link declares the tools its owner gives it, and declares them again when they change."""

from __future__ import annotations

import asyncio
import contextlib

from pivox.config import Config, load_config
from pivox.core.events import SessionUpdate, Tool
from pivox.host.systemd import Notifier
from pivox.net.link import Link, session_config
from pivox.net.secrets import ApiKey
from pivox.protocol.provider import Wire
from tests.daemon_harness import daemon_config, received, wait_until
from tests.fixtures_server import StartServer

TIMER = Tool(name="start_timer", description="Start a timer.",
             parameters={"type": "object", "properties": {"seconds": {"type": "number"}}})


class Owner:
    """The least a link serves: a config, and notes of what the link told it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.api_key: ApiKey | None = None
        self.ups = 0

    def link_up(self) -> None:
        self.ups += 1

    def link_down(self, *, auth: bool) -> None:
        pass

    async def on_frame(self, frame: bytes, wire: Wire) -> None:
        pass

    def quiet(self) -> bool:
        return True

    def idle_locally(self) -> bool:
        return False


def declared(event: object) -> list[str]:
    assert isinstance(event, SessionUpdate)
    return [tool.name for tool in event.session.tools]


async def test_the_session_declares_the_current_tools_and_is_updated_when_they_change(
    start_realtime_server: StartServer,
) -> None:
    tools: list[Tool] = []
    async with start_realtime_server() as server:
        owner = Owner(daemon_config(server.url, "push_to_talk"))
        link = Link(owner, Notifier({}), asyncio.get_running_loop().time,
                    tools=lambda: tuple(tools))
        task = asyncio.create_task(link.run())
        try:
            await wait_until(lambda: owner.ups == 1 and bool(server.connections)
                             and bool(received(server)), what="session.update sent")
            assert declared(received(server)[0]) == []
            tools.append(TIMER)  # e.g. an MCP server came up
            link.update_session()
            await wait_until(lambda: len(received(server)) == 2, what="the second update")
            assert declared(received(server)[1]) == ["start_timer"]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def test_tool_servers_prompts_join_the_instructions_while_they_fit() -> None:
    config = load_config(None, ["session.instructions=Be brief."])
    assert session_config(config, (), ("Home prompt.",)).instructions == (
        "Be brief.\n\nHome prompt.")
    assert session_config(config, (), ("x" * 70000,)).instructions == "Be brief."
