"""A real MCP server for the tests: Home Assistant's `/api/mcp`, as the `mcp` SDK serves it.

`McpHome` runs the SDK's low-level `Server` as a Streamable HTTP app in the mode Home Assistant
uses (stateless, plain JSON responses, `POST /api/mcp`) under uvicorn on a loopback port, behind
an ASGI wrapper that checks `Authorization: Bearer <token>`. Its tools are shaped like Home
Assistant's (`HassTurnOn`, `HassTurnOff`, `HassLightSet`, `GetLiveContext`) over a small
in-memory home; `Knobs` turn on the hostile cases (a slow tool, 401, 500, a redirect to another
origin, 2000 tools, a 1 MB description, an invalid schema, a tool named `get_time`, paging).
The low-level server is used (not `MCPServer`) so a test can serve any tool JSON at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mcp_types as types
import orjson
import pytest_asyncio
import uvicorn
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer

TOKEN = "hA-LongLivedToken.eyJ0ZXN0IjoibWNwIn0.s3cr3tPart"
PATH = "/api/mcp"

_TARGET = {"type": "object", "properties": {
    "name": {"type": "string"}, "area": {"type": "string"},
    "domain": {"type": "array", "items": {"type": "string"}},
}}
HA_TOOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "HassTurnOn": ("Turns on/opens/presses a device or entity", _TARGET),
    "HassTurnOff": ("Turns off/closes a device or entity", _TARGET),
    "HassLightSet": ("Sets the brightness percentage or color of a light", {
        "type": "object", "properties": {
            "name": {"type": "string"}, "area": {"type": "string"},
            "brightness": {"type": "integer", "minimum": 0, "maximum": 100},
            "color": {"type": "string"}}}),
    "GetLiveContext": (
        "Provides real-time information about the CURRENT state, value, or mode of devices, "
        "sensors, entities, or areas.", {"type": "object", "properties": {}}),
}
PROMPT = "You are a voice assistant for Home Assistant. Answer questions about the home."


@dataclass
class Knobs:
    """What the server does besides being a good Home Assistant; tests flip these live."""

    token: str = TOKEN
    slow_s: float = 0.0
    """Seconds every tool call takes."""
    status: int | None = None
    """Answer every POST with this HTTP status (401, 500) and no MCP at all."""
    redirect_to: str | None = None
    """Answer every POST with a 307 to this URL."""
    filler_tools: int = 0
    huge_description: bool = False
    invalid_schema: bool = False
    get_time: bool = False
    deep_schema: bool = False
    page_size: int = 0
    """Tools per tools/list page (0: all at once)."""
    result_bytes: int = 0
    """Make every tool result this many bytes of text (a hostile 20 MB answer)."""
    stateful: bool = False
    """Serve with sessions and SSE (not Home Assistant's mode): notifications can reach the
    client, and calling `HassTurnOn` adds a tool and sends notifications/tools/list_changed."""
    extra: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    """More tools, by name: (description, schema); a list change on the server."""


@dataclass
class Entity:
    """One device of the in-memory home."""

    entity_id: str
    state: str = "off"
    brightness: int = 0


def _home() -> dict[str, Entity]:
    return {"kitchen light": Entity("light.kitchen"),
            "living room lamp": Entity("light.living_room", "on", 60)}


class McpHome:
    """The server; `async with McpHome() as home:` runs it, `home.url` is its endpoint."""

    def __init__(self, knobs: Knobs | None = None, port: int = 0,
                 tls: tuple[str, str] | None = None, sse: bool = False) -> None:
        self.knobs = knobs or Knobs()
        self.tls = tls
        """(certificate file, key file): serve https."""
        self.sse = sse
        """Serve the older SSE transport at /sse (Home Assistant's /mcp_server/sse), by
        `MCPServer`, with HassTurnOn and GetLiveContext only."""
        self.entities = _home()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.posts = 0
        self.port = port or free_port()
        self.cancelled = 0
        self._uvicorn: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        path = "/sse" if self.sse else PATH
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    # ------------------------------------------------------------------ MCP

    def tools(self) -> list[types.Tool]:
        """The tool list as served now."""
        k = self.knobs
        table = dict(HA_TOOLS)
        if k.get_time:
            table["get_time"] = ("The time in the home's time zone.",
                                 {"type": "object", "properties": {}})
        if k.huge_description:
            table["HassHugeDescription"] = ("x" * 1_000_000, {"type": "object"})
        if k.deep_schema:
            deep: dict[str, Any] = {"type": "string"}
            for _ in range(40):
                deep = {"type": "object", "properties": {"a": deep}}
            table["HassDeep"] = ("A tool nested 40 deep.", deep)
        for i in range(k.filler_tools):
            table[f"HassFiller{i:04d}"] = (f"Filler tool {i}.", {"type": "object"})
        table.update(k.extra)
        return [types.Tool(name=name, description=desc, input_schema=schema)
                for name, (desc, schema) in table.items()]

    async def _list_tools(self, ctx: Any, params: types.PaginatedRequestParams | None
                          ) -> types.ListToolsResult:
        tools = self.tools()
        size = self.knobs.page_size
        if not size:
            return types.ListToolsResult(tools=tools)
        start = int(params.cursor) if params is not None and params.cursor else 0
        end = start + size
        return types.ListToolsResult(tools=tools[start:end],
                                     next_cursor=str(end) if end < len(tools) else None)

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams
                         ) -> types.CallToolResult:
        args = dict(params.arguments or {})
        self.calls.append((params.name, args))
        if self.knobs.slow_s:
            try:
                await asyncio.sleep(self.knobs.slow_s)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        text = self._intent(params.name, args)
        if self.knobs.result_bytes:
            text = "x" * self.knobs.result_bytes
        if self.knobs.stateful and params.name == "HassTurnOn":
            self.knobs.extra["HassListAddItem"] = ("Adds an item to a list", {"type": "object"})
            await ctx.session.send_tool_list_changed()
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    def _intent(self, name: str, args: dict[str, Any]) -> str:
        """What Home Assistant answers: an intent response as JSON text."""
        if name == "GetLiveContext":
            lines = [f"- names: {key}\n  domain: light\n  state: '{e.state}'"
                     for key, e in self.entities.items()]
            return orjson.dumps({"success": True,
                                 "result": "Live Context: ...\n" + "\n".join(lines)}).decode()
        entity = self.entities.get(str(args.get("name", "")).lower())
        if entity is None:
            return orjson.dumps({"speech": {}, "response_type": "error",
                                 "data": {"code": "no_valid_targets"}}).decode()
        if name == "HassTurnOn":
            entity.state = "on"
        elif name == "HassTurnOff":
            entity.state = "off"
        elif name == "HassLightSet":
            entity.state, entity.brightness = "on", int(args.get("brightness", 100))
        return orjson.dumps({"speech": {}, "response_type": "action_done", "data": {
            "targets": [], "success": [{"name": args["name"], "type": "entity",
                                        "id": entity.entity_id}], "failed": []}}).decode()

    async def _list_prompts(self, ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[types.Prompt(name="Assist",
                                                             description="Default prompt")])

    async def _get_prompt(self, ctx: Any, params: types.GetPromptRequestParams
                          ) -> types.GetPromptResult:
        return types.GetPromptResult(messages=[types.PromptMessage(
            role="assistant", content=types.TextContent(type="text", text=PROMPT))])

    def app(self) -> Any:
        """The ASGI app: the bearer check and the knobs around the SDK's Streamable HTTP app."""
        server = Server("home-assistant", version="test", on_list_tools=self._list_tools,
                        on_call_tool=self._call_tool, on_list_prompts=self._list_prompts,
                        on_get_prompt=self._get_prompt)
        stateful = self.knobs.stateful
        inner = self._sse_app() if self.sse else server.streamable_http_app(
            streamable_http_path=PATH, json_response=not stateful, stateless_http=not stateful)

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            self.posts += 1
            headers = dict(scope["headers"])
            k = self.knobs
            if k.redirect_to is not None:
                await _answer(send, 307, b"", [(b"location", k.redirect_to.encode())])
            elif k.status is not None:
                await _answer(send, k.status, b"error")
            elif headers.get(b"authorization") != f"Bearer {k.token}".encode():
                await _answer(send, 401, b"401: Unauthorized")
            elif k.invalid_schema:
                await self._raw_tools(scope, receive, send, inner)
            else:
                await inner(scope, receive, send)

        return app

    def _sse_app(self) -> Any:
        server = MCPServer("home-assistant")

        def turn_on(name: str = "", area: str = "") -> str:
            self.calls.append(("HassTurnOn", {"name": name}))
            return self._intent("HassTurnOn", {"name": name})

        def live_context() -> str:
            return self._intent("GetLiveContext", {})

        server.add_tool(turn_on, name="HassTurnOn", description=HA_TOOLS["HassTurnOn"][0])
        server.add_tool(live_context, name="GetLiveContext",
                        description=HA_TOOLS["GetLiveContext"][0])
        return server.sse_app()

    async def _raw_tools(self, scope: Any, receive: Any, send: Any, inner: Any) -> None:
        """Answer tools/list by hand, with a tool whose schema the SDK's own server would not
        serve (Home Assistant builds its list without the SDK); anything else goes on."""
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = orjson.loads(body) if body else {}
        if isinstance(request, dict) and request.get("method") == "tools/list":
            tools = [t.model_dump(by_alias=True, mode="json", exclude_none=True)
                     for t in self.tools()]
            tools.insert(1, {"name": "HassBroken", "description": "Its schema is no schema.",
                             "inputSchema": {"type": "object", "properties": "oops"}})
            answer = {"jsonrpc": "2.0", "id": request["id"], "result": {"tools": tools}}
            await _answer(send, 200, orjson.dumps(answer), content_type=b"application/json")
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await inner(scope, replay, send)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        cert, key = self.tls or (None, None)
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", ssl_certfile=cert, ssl_keyfile=key)
        self._uvicorn = uvicorn.Server(config)
        self._task = asyncio.create_task(self._uvicorn.serve())
        while not self._uvicorn.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._uvicorn is not None and self._task is not None:
            self._uvicorn.should_exit = True
            done, _ = await asyncio.wait([self._task], timeout=1)
            if not done:  # an open SSE stream: uvicorn would wait for it to end
                self._uvicorn.force_exit = True
                await asyncio.wait([self._task], timeout=5)
        self._uvicorn = self._task = None

    async def __aenter__(self) -> McpHome:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _answer(send: Any, status: int, body: bytes,
                  headers: list[tuple[bytes, bytes]] | None = None,
                  content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def free_port() -> int:
    """A loopback port free right now (for a server started later on it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(directory: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key, made by openssl in `directory`."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return str(cert), str(key)


@contextlib.contextmanager
def home_in_thread(knobs: Knobs | None = None,
                   tls: tuple[str, str] | None = None) -> Iterator[McpHome]:
    """An `McpHome` on an event loop of its own, for code that runs its own (`pivox check`)."""
    home = McpHome(knobs, tls=tls)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(home.start(), loop).result(10)
    try:
        yield home
    finally:
        asyncio.run_coroutine_threadsafe(home.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest_asyncio.fixture
async def mcp_home() -> AsyncIterator[McpHome]:
    """A running Home-Assistant-shaped MCP server with the default knobs."""
    async with McpHome() as home:
        yield home
