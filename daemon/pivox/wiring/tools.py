"""The model's tool calls: local skills (timers too) run here, MCP tools on their servers;
every output goes back through the response tracker, and remote calls stop when the reply
they belong to does (barge-in, reply timeout, a session gone)."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

from pivox.config import Config
from pivox.core.events import FunctionCallDone, Tool
from pivox.skills.registry import call_tool, declared_tools
from pivox.wiring.parts import DaemonParts

if TYPE_CHECKING:
    from pivox.skills.mcp import McpBridge

log = logging.getLogger("pivox.daemon")


class ToolCalls:
    """Declares the tools to the link and routes the calls of the live response."""

    def __init__(self, daemon: DaemonParts, mcp: McpBridge | None) -> None:
        self.d, self.mcp = daemon, mcp
        self.mcp_config = daemon.config.mcp
        """The [mcp] section the bridge was built from (a change needs a restart)."""

    def declared(self) -> tuple[Tool, ...]:
        """Link: the local tools the config enables, then the MCP servers' tools."""
        local = declared_tools(self.d.config.session.tools)
        return local if self.mcp is None else local + self.mcp.tools()

    def prompts(self) -> tuple[str, ...]:
        """Link: the MCP servers' prompts for the session's instructions."""
        return self.mcp.prompts() if self.mcp else ()

    def session_opened(self) -> None:
        """A new session: re-read the MCP tool lists; calls of the one before answer nobody."""
        if self.mcp is not None:
            self.mcp.refresh()  # a changed list reaches the session by update_session
        self.cancel_remote()

    def reloaded(self, new: Config) -> None:
        """The config was reloaded: the bridge keeps its servers until a restart."""
        if new.mcp != self.mcp_config:
            log.warning("[mcp] changed: restart pivox to apply it", extra={"PIVOX_EVENT": "reload"})

    async def on_call(self, event: FunctionCallDone) -> None:
        """Route: a function call is complete; run it unless its response has ended."""
        d = self.d
        if not d.responses.call_started(event.response_id, event.call_id):
            log.info("tool %s of ended response %s not run", event.name, event.response_id,
                     extra=d.log_fields(RESPONSE_ID=event.response_id, PIVOX_EVENT="tool_call"))
            return
        if self.mcp is not None and self.mcp.owns(event.name):  # off the receive path
            self.mcp.start(event.name, event.arguments, partial(self._answered, event))
            return
        output = call_tool(d, tuple(d.config.session.tools), event.name, event.arguments)
        await d.timers.save()  # an answered set_timer is on disk before the answer goes
        self._answered(event, output)

    def _answered(self, event: FunctionCallDone, output: str) -> None:
        log.info("tool %s(%s) -> %s", event.name, event.arguments, output,
                 extra=self.d.log_fields(RESPONSE_ID=event.response_id, PIVOX_EVENT="tool_call"))
        self.d.carry_out(self.d.responses.call_output(event.call_id, output))

    def cancel_remote(self) -> None:
        """Barge-in, reply timeout, a session gone: MCP calls in flight stop (the tracker
        drops their outputs anyway; this ends their requests)."""
        if self.mcp is not None:
            self.mcp.cancel_calls()
