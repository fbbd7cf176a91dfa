"""The MCP bridge: pivox as an MCP client, offering the servers' tools as its own function tools.

One `ServerLink` per `[[mcp.servers]]` entry keeps an MCP client session (the official `mcp`
SDK over Streamable HTTP, imported only here and only when servers are configured) in a task
of its own: initialize, list the tools (all pages), optionally read the prompt, then run the
calls handed to it, each in its own task. A connection failure ends the session: calls in
flight get an error output at once, the tools stay offered and answer an error at once, and
the session is reopened with backoff; its tool list is read again when it is back, and on
`notifications/tools/list_changed` or `refresh()` (each realtime (re)connect). Whenever the
offered tools change, `on_change` is called (the daemon resends `session.update`).

What is offered and what a result becomes is decided in `pivox.skills.mcptools` (pure).
Redirects off the configured origin are not followed (the SDK's rule), TLS is verified (with
`ca_file` when given), the token goes only into the Authorization header and is a registered
secret, so logs show `[redacted]`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from pivox.config import McpServerSettings
from pivox.core.backoff import Backoff
from pivox.core.events import Tool
from pivox.host.logsafe import shown
from pivox.host.optional import MissingDependency, require
from pivox.host.waits import wait_set
from pivox.skills.mcptools import (
    MAX_LISTED,
    MAX_PAGES,
    MAX_TOOLS,
    RemoteTool,
    error_output,
    prompt_text,
    result_output,
    select_tools,
)
from pivox.skills.registry import MAX_ARGUMENTS_CHARS

log = logging.getLogger("pivox.mcp")

RETRY_CAP_S = 60.0
"""Longest wait between attempts to reach a server that is down."""
CONNECT_FACTOR = 2.0
"""Connecting (initialize, every tools/list page, the prompt) may take this many `timeout_s`."""
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""Largest HTTP body read from a server (a listing of 2000 tools with a 1 MB description is
1.3 MB); a larger one fails its request instead of filling the memory."""
READ_FACTOR = 6.0
"""An HTTP read may take this many `timeout_s` (the SDK ends the session when one times out)."""


class Secret(Protocol):
    """A token that does not show itself (`pivox.net.secrets.ApiKey`)."""

    def reveal(self) -> str: ...


def load_sdk() -> Any:
    """The `mcp` SDK's client module, or MissingDependency naming `pip install 'pivox[mcp]'`."""
    return require("mcp.client", "mcp", "mcp")


@dataclass(eq=False)
class _Call:
    """One tools/call handed to a session: its future resolves to the function output."""

    name: str
    arguments: dict[str, Any]
    future: asyncio.Future[str]
    scope: Any = None  # the anyio CancelScope of its task, once it runs


_REFRESH = object()
"""Queued to a session: read the tool list again."""
_CLOSED = object()
"""Queued to a session: its connection is gone (a call was told so); end it and reconnect."""
CONNECTION_CLOSED = -32000
"""The SDK's JSON-RPC code for a request whose connection closed (`mcp_types`)."""


@dataclass(eq=False)
class ServerLink:
    """One configured server: its session task, its state and its last tool listing."""

    settings: McpServerSettings
    token: Secret | None
    on_listing: Callable[[], None]
    up: bool = False
    reason: str = "has not answered yet"
    """Why the server is not up, in words the model can say after the server's name."""
    listing: list[dict[str, Any]] | None = None
    prompt: str = ""
    status: int | None = None
    """The last HTTP error status the server answered (401, 500, a redirect)."""
    left_out: tuple[str, ...] = ()
    """Why tools of the last listing were left out (logged when it changes)."""
    _queue: asyncio.Queue[_Call | object] = field(default_factory=asyncio.Queue)
    _pending: set[_Call] = field(default_factory=set)
    _retry_now: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return self.settings.name

    async def run(self) -> None:
        """Keep a session open until cancelled, reconnecting with backoff."""
        backoff = Backoff(base=1.0, cap=RETRY_CAP_S)
        while True:
            before = self.reason
            try:
                await self._session(backoff)
            except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # an ExceptionGroup from the SDK's task groups
                self._down(self._describe(exc))
            delay = backoff.next_delay()
            # one line when the server goes down or fails differently; retries at debug
            level = logging.DEBUG if self.reason == before else logging.WARNING
            log.log(level, "MCP server %s %s; %s; retrying in %.1f s", self.name, self.reason,
                    "its tools answer an error until it is back" if self.listing is not None
                    else "running without its tools", delay,
                    extra={"PIVOX_EVENT": "mcp_down", "PIVOX_MCP_SERVER": self.name})
            self._retry_now.clear()
            await wait_set(self._retry_now, delay)

    def refresh(self) -> None:
        """Read the tool list again; a server that is down is tried again now."""
        if self.up:
            self._queue.put_nowait(_REFRESH)
        else:
            self._retry_now.set()

    async def call(self, tool: RemoteTool, arguments: dict[str, Any]) -> str:
        """The output of one call; errors (down, timeout, refused) are outputs too."""
        if not self.up:
            return error_output(f"{self.name} {self.reason}")
        loop = asyncio.get_running_loop()
        call = _Call(tool.name, arguments, loop.create_future())
        call.future.add_done_callback(_cancel_scope_if_cancelled(call))
        self._queue.put_nowait(call)
        timeout = self.settings.timeout_s
        try:
            async with asyncio.timeout(timeout):
                return await call.future
        except TimeoutError:
            return error_output(f"{self.name} did not answer in {timeout:g} s")

    async def probe(self) -> tuple[bool, str]:
        """Connect once and list the tools: (answered, what happened), for `pivox check`."""
        try:
            async with self._client() as client:
                async with asyncio.timeout(self.settings.timeout_s * CONNECT_FACTOR):
                    await self._read_listing(client)
        except Exception as exc:
            return False, f"{self.name} {self._describe(exc)}"
        listing = self.listing or []
        offered = select_tools(self.name, listing, self.settings.tools, set()).tools
        return True, f"{self.name} answered: {len(listing)} tools, {len(offered)} offered"

    # ------------------------------------------------------------------ the session task

    async def _session(self, backoff: Backoff) -> None:
        anyio = require("anyio", "mcp", "mcp")
        async with self._client() as client:
            async with asyncio.timeout(self.settings.timeout_s * CONNECT_FACTOR):
                await self._read_listing(client)
            self.up, self.reason, self.status = True, "", None
            backoff.reset()
            count = len(self.listing or ())
            log.info("MCP server %s answered: %d tools listed", self.name, count,
                     extra={"PIVOX_EVENT": "mcp_up", "PIVOX_MCP_SERVER": self.name})
            self.on_listing()
            async with anyio.create_task_group() as tasks:
                while True:
                    item = await self._queue.get()
                    if isinstance(item, _Call):
                        if not item.future.done():
                            self._pending.add(item)
                            tasks.start_soon(self._run_call, client, item, anyio)
                    elif item is _CLOSED:  # the SSE stream ended: the session cannot recover
                        raise ConnectionError("the connection closed")
                    else:
                        async with asyncio.timeout(self.settings.timeout_s * CONNECT_FACTOR):
                            await self._read_listing(client)
                        self.on_listing()

    def _client(self) -> Any:
        """An SDK client for this server: bearer token, TLS as configured, origin-bound."""
        sdk = load_sdk()
        httpx2 = require("httpx2", "mcp", "mcp")
        s = self.settings
        headers = {"Authorization": f"Bearer {self.token.reveal()}"} if self.token else {}
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=s.ca_file) if s.ca_file else True)

        async def note_status(response: Any) -> None:
            code = response.status_code
            self.status = code if code >= 300 else None  # what the last answer said
            response.stream = _bounded(httpx2, response.stream, MAX_RESPONSE_BYTES)

        def http_client(headers: dict[str, str] | None = None, timeout: Any = None,
                        auth: Any = None) -> Any:
            # reads may take longer than a call may: the call gives up first (an error output
            # the model says) and its request is left to finish; a read past this ends the
            # session
            timeout = timeout or httpx2.Timeout(s.timeout_s, read=s.timeout_s * READ_FACTOR)
            return httpx2.AsyncClient(headers=headers, verify=verify, timeout=timeout, auth=auth,
                                      event_hooks={"response": [note_status]})

        if s.transport == "sse":
            sse = require("mcp.client.sse", "mcp", "mcp")
            transport = sse.sse_client(s.url, headers=headers, timeout=s.timeout_s,
                                       httpx_client_factory=http_client)
        else:
            streamable = require("mcp.client.streamable_http", "mcp", "mcp")
            transport = streamable.streamable_http_client(s.url,
                                                          http_client=http_client(headers))
        return sdk.Client(transport, mode="legacy", cache=None,
                          message_handler=self._on_message)

    async def _on_message(self, message: Any) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            log.info("MCP server %s says its tools changed", self.name,
                     extra={"PIVOX_EVENT": "mcp_list_changed", "PIVOX_MCP_SERVER": self.name})
            self._queue.put_nowait(_REFRESH)

    async def _read_listing(self, client: Any) -> None:
        """Every page of tools/list (bounded), and the prompt when `use_prompt`."""
        listing: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            tools, cursor = await _tools_page(client, cursor)
            listing += tools[: MAX_LISTED - len(listing)]
            if cursor is None or len(listing) >= MAX_LISTED:
                break
        self.listing = listing
        if self.settings.use_prompt:
            self.prompt = await self._read_prompt(client)

    async def _read_prompt(self, client: Any) -> str:
        """The server's first prompt as text; a server without prompts keeps its tools."""
        try:
            prompts = (await client.list_prompts()).prompts
            if not prompts:
                return ""
            result = await client.get_prompt(prompts[0].name)
        except Exception as exc:  # MCPError (no prompts capability), a bad result
            log.warning("MCP server %s gave no prompt: %s", self.name, shown(str(exc), 200),
                        extra={"PIVOX_EVENT": "mcp_prompt", "PIVOX_MCP_SERVER": self.name})
            return ""
        return prompt_text(m.model_dump(by_alias=True, mode="json") for m in result.messages)

    async def _run_call(self, client: Any, call: _Call, anyio: Any) -> None:
        with anyio.CancelScope() as scope:
            call.scope = scope
            # cancelled (the session ended): left pending, `_down` answers it with the reason
            try:
                result = await client.call_tool(call.name, call.arguments)
            except Exception as exc:  # MCPError, a result that does not validate, ...
                output = error_output(self._call_failed(exc))
                if getattr(exc, "code", None) == CONNECTION_CLOSED:
                    self._queue.put_nowait(_CLOSED)
            else:
                content = [block.model_dump(mode="json") for block in result.content]
                output = result_output(content, result.structured_content, bool(result.is_error))
            self._resolve(call, output)
        self._pending.discard(call)  # answered, or its caller gave up (scope.cancel())

    def _resolve(self, call: _Call, output: str) -> None:
        if not call.future.done():
            call.future.set_result(output)

    def _down(self, reason: str) -> None:
        """The session ended: calls in flight answer at once, the tools stay offered."""
        self.up, self.reason = False, reason
        for call in list(self._pending):
            self._resolve(call, error_output(f"{self.name} {reason}"))
        self._pending.clear()
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _Call):
                self._resolve(item, error_output(f"{self.name} {reason}"))

    # ------------------------------------------------------------------ words for failures

    def _call_failed(self, exc: Exception) -> str:
        """What the model is told when a call got no result."""
        status, self.status = self.status, None
        return f"{self.name} {_status_words(status) or 'failed: ' + shown(str(exc), 200)}"

    def _describe(self, exc: BaseException) -> str:
        """Why a session could not open or ended, in words to say after the server's name."""
        status, self.status = self.status, None
        words = _status_words(status)
        if words:
            return words
        leaf = _leaf(exc)
        if isinstance(leaf, TimeoutError):
            return f"did not answer in {self.settings.timeout_s * CONNECT_FACTOR:g} s"
        if isinstance(leaf, ssl.SSLError) or "CERTIFICATE" in str(leaf):
            return f"has a TLS certificate that was not accepted ({shown(str(leaf), 160)})"
        if isinstance(leaf, ResponseTooLarge):
            return str(leaf)
        if type(leaf).__name__ in ("MCPError", "ValidationError", "ValueError"):
            return f"answered with an error ({shown(str(leaf), 160)})"
        text = str(leaf) or type(leaf).__name__
        return f"cannot be reached ({shown(text, 160)})"


def _status_words(status: int | None) -> str:
    """An HTTP error status in words, or empty."""
    if status is None:
        return ""
    if status in (401, 403):
        return "refused the token"
    if 300 <= status < 400:
        return "redirected to another address, which pivox does not follow"
    return f"failed (HTTP {status})"


async def _tools_page(client: Any, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One tools/list page as raw entries and the next cursor.

    Raw, because the SDK validates a listing whole: one tool with a schema it refuses would
    fail the server's every tool, where pivox leaves that one out (`mcptools.select_tools`).
    The SDK's dispatcher has the raw request (`Outbound.send_raw_request`); the session keeps
    it private, so a later SDK without it gets the validated listing instead.
    """
    dispatcher = getattr(client.session, "_dispatcher", None)
    if dispatcher is None:
        page = await client.list_tools(cursor=cursor)
        return [tool.model_dump(by_alias=True, mode="json", exclude_none=True)
                for tool in page.tools], page.next_cursor
    raw = await dispatcher.send_raw_request("tools/list", {"cursor": cursor} if cursor else None)
    tools = raw.get("tools") if isinstance(raw, dict) else None
    if not isinstance(tools, list):
        raise ValueError("tools/list answered without a list of tools")
    next_cursor = raw.get("nextCursor")
    return ([tool for tool in tools if isinstance(tool, dict)],
            next_cursor if isinstance(next_cursor, str) and next_cursor else None)


class ResponseTooLarge(Exception):
    """A server's HTTP body went past MAX_RESPONSE_BYTES."""


def _bounded(httpx2: Any, stream: Any, limit: int) -> Any:
    """`stream` (an httpx2 response's) stopping at `limit` bytes: peer data is bounded."""

    class Bounded(httpx2.AsyncByteStream):  # type: ignore[misc]  # httpx2 is loaded lazily
        async def __aiter__(self) -> AsyncIterator[bytes]:
            total = 0
            async for chunk in stream:
                total += len(chunk)
                if total > limit:
                    raise ResponseTooLarge(f"sent a reply over {limit // 2**20} MB")
                yield chunk

        async def aclose(self) -> None:
            await stream.aclose()

    return Bounded()


def _leaf(exc: BaseException) -> BaseException:
    """The first non-group exception inside (the SDK's task groups nest them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    cause = exc.__cause__
    return cause if isinstance(cause, ssl.SSLError) else exc


def _cancel_scope_if_cancelled(call: _Call) -> Callable[[asyncio.Future[str]], None]:
    """A done-callback: a call whose caller gave up (barge-in, link drop, timeout) stops."""

    def done(future: asyncio.Future[str]) -> None:
        if future.cancelled() and call.scope is not None:
            call.scope.cancel()

    return done


def open_bridge(servers: Sequence[McpServerSettings],
                load_token: Callable[[McpServerSettings, int], Secret | None], *,
                reserved: Sequence[str], on_change: Callable[[], None]) -> McpBridge | None:
    """The bridge when servers are configured (tokens read now: a bad one is a ConfigError),
    else None; so is a missing SDK, in one error line (the device runs with its own tools)."""
    if not servers:
        return None
    tokens = {s.name: load_token(s, index) for index, s in enumerate(servers)}
    try:
        return McpBridge(servers, tokens, reserved=reserved, on_change=on_change)
    except MissingDependency as exc:
        log.error("MCP servers are configured but %s; running without them", exc,
                  extra={"PIVOX_EVENT": "mcp_missing"})
        return None


class McpBridge:
    """All configured servers: which tools they offer and the calls to them."""

    def __init__(self, servers: Sequence[McpServerSettings], tokens: Mapping[str, Secret | None],
                 *, reserved: Sequence[str], on_change: Callable[[], None]) -> None:
        load_sdk()  # a missing SDK is one line naming the install command, before anything runs
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            # httpx2 logs every request at INFO; pivox logs each call once itself
            logging.getLogger("httpx2").setLevel(logging.WARNING)
        self.links = [ServerLink(s, tokens.get(s.name), self._relist) for s in servers]
        self._reserved = tuple(reserved)
        self._on_change = on_change
        self._offered: tuple[Tool, ...] = ()
        self._by_name: dict[str, tuple[ServerLink, RemoteTool]] = {}
        self._prompts: tuple[str, ...] = ()
        self._calls: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Run every server's session until cancelled."""
        async with asyncio.TaskGroup() as group:
            for link in self.links:
                group.create_task(link.run(), name=f"mcp-{link.name}")

    def tools(self) -> tuple[Tool, ...]:
        """The declarations of every offered MCP tool, for the session's tools."""
        return self._offered

    def prompts(self) -> tuple[str, ...]:
        """The servers' prompts to append to the instructions (`use_prompt`)."""
        return self._prompts

    def owns(self, name: str) -> bool:
        """True when `name` is an offered MCP tool."""
        return name in self._by_name

    def refresh(self) -> None:
        """Read every server's tool list again (at each realtime (re)connect)."""
        for link in self.links:
            link.refresh()

    @property
    def running(self) -> int:
        """Calls started and not answered or cancelled yet."""
        return len(self._calls)

    def start(self, name: str, arguments: str, answer: Callable[[str], None]) -> None:
        """Run one call as a task of its own (off the receive path); `answer(output)` when it
        is done, never when it was cancelled."""

        async def run() -> None:
            answer(await self.call(name, arguments))

        task = asyncio.create_task(run(), name=f"mcp-call-{name}")
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    def cancel_calls(self) -> None:
        """Stop every call in flight (barge-in, reply timeout, a session gone): their
        requests end and their outputs are never answered."""
        for task in self._calls:
            task.cancel()
        self._calls.clear()

    async def call(self, name: str, arguments: str) -> str:
        """Run one call of an offered tool; the output is bounded JSON, errors included."""
        entry = self._by_name.get(name)
        if entry is None:
            return error_output(f"unknown tool {shown(name, 64)}")
        if len(arguments) > MAX_ARGUMENTS_CHARS:
            return error_output(f"arguments too long: {len(arguments)} chars, at most "
                                f"{MAX_ARGUMENTS_CHARS}")
        try:
            args = orjson.loads(arguments or "{}")
        except orjson.JSONDecodeError as exc:
            return error_output(f"arguments are not valid JSON: {exc}")
        if not isinstance(args, dict):
            return error_output("arguments must be a JSON object")
        link, tool = entry
        return await link.call(tool, args)

    def _relist(self) -> None:
        """A server's listing changed: select again in config order, tell the daemon if the
        offered tools changed."""
        taken = set(self._reserved)
        offered: list[Tool] = []
        by_name: dict[str, tuple[ServerLink, RemoteTool]] = {}
        for link in self.links:
            if link.listing is None:
                continue
            room = MAX_TOOLS - len(self._reserved) - len(offered)  # local tools count too
            selection = select_tools(link.name, link.listing, link.settings.tools, taken, room)
            for remote in selection.tools:
                offered.append(remote.tool)
                by_name[remote.tool.name] = (link, remote)
            if selection.left_out and selection.left_out != link.left_out:
                log.warning("MCP server %s: left out %d tools: %s", link.name,
                            len(selection.left_out), "; ".join(selection.left_out[:5]),
                            extra={"PIVOX_EVENT": "mcp_tools", "PIVOX_MCP_SERVER": link.name})
            link.left_out = selection.left_out  # said once, not at every re-listing
        prompts = tuple(link.prompt for link in self.links if link.prompt)
        changed = (tuple(offered), prompts) != (self._offered, self._prompts)
        self._offered, self._by_name, self._prompts = tuple(offered), by_name, prompts
        if changed:
            log.info("MCP tools offered: %d (%s)", len(offered),
                     ", ".join(tool.name for tool in offered[:12]),
                     extra={"PIVOX_EVENT": "mcp_tools"})
            self._on_change()
