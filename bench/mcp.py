"""Benchmark: what pivox adds to an MCP tool call, and what the MCP client costs to load.

Run: .venv/bin/python bench/mcp.py [--calls N] [--loads N]

Prints, each beside the MCP round trip itself measured in the same run (the SDK's own
`call_tool` on the same server, no pivox in between):

- function call received -> MCP request on the wire: the daemon reads the bundled server's
  `response.function_call_arguments.done` frame -> the MCP server's ASGI app gets the
  `tools/call` request (both clocks are this process's `time.monotonic`);
- MCP response -> function output sent: the MCP server hands its answer to uvicorn -> the
  bundled realtime server receives the `function_call_output` (websocket included);
- RSS and import time of a pivox daemon process without and with the MCP client loaded
  (`pivox.daemon`, then `mcp.client` + `httpx2`, as the bridge imports them), in fresh
  interpreters, medians of `--loads` runs.

Not a test: nothing here passes or fails. The daemon (file mic and speaker, no sound card),
the bundled server and the MCP server (tests/mcp_home.py) share one asyncio loop.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# this file is bench/mcp.py: its folder goes last, so it does not shadow the `mcp` package
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE] + [
    str(HERE)]

from tests.mcp_home import TOKEN, McpHome  # noqa: E402

import harness  # type: ignore[import-not-found]  # noqa: E402
import soak  # type: ignore[import-not-found]  # noqa: E402
from pivox.config import load_config  # noqa: E402
from pivox.core.events import FunctionCallOutput, SessionUpdate  # noqa: E402
from pivox.core.machine import State  # noqa: E402
from pivox.daemon import Daemon  # noqa: E402
from pivox.protocol.provider import Wire  # noqa: E402
from pivox.server import RealtimeServer, ServerOptions  # noqa: E402


class TimedDaemon(Daemon):
    """The daemon, noting when each function-call frame reaches it and when the bridge's
    session task starts the SDK's `call_tool` for it."""

    call_frames: list[float] = []  # noqa: RUF012
    sdk_calls: list[float] = []  # noqa: RUF012
    bridge_outputs: list[float] = []  # noqa: RUF012

    async def on_frame(self, frame: bytes, wire: Wire) -> None:
        if b"function_call_arguments.done" in frame:
            self.call_frames.append(time.monotonic())
        await super().on_frame(frame, wire)

    def time_sdk_calls(self) -> None:
        assert self.mcp is not None
        (link,) = self.mcp.links
        run_call = link._run_call

        async def timed(*args: Any) -> None:
            self.sdk_calls.append(time.monotonic())
            await run_call(*args)

        link._run_call = timed  # type: ignore[method-assign]
        call = self.mcp.call

        async def timed_call(name: str, arguments: str) -> str:
            output = await call(name, arguments)
            self.bridge_outputs.append(time.monotonic())
            return output

        self.mcp.call = timed_call  # type: ignore[method-assign]


class TimedHome(McpHome):
    """The MCP server, noting when each tools/call arrives and when its answer leaves."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []
        self.answers: list[float] = []

    def app(self) -> Any:
        inner = super().app()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            arrived = time.monotonic()
            first = await receive()
            is_call = b'"tools/call"' in first.get("body", b"")
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if replayed:
                    return await receive()  # type: ignore[no-any-return]
                replayed = True
                return first  # type: ignore[no-any-return]

            async def timed_send(message: dict[str, Any]) -> None:
                if is_call and message["type"] == "http.response.body" and not message.get(
                        "more_body"):
                    self.answers.append(time.monotonic())
                await send(message)

            if is_call:
                self.arrivals.append(arrived)
            await inner(scope, replay, timed_send)

        return app


def spread(values: list[float]) -> str:
    """Median and p99 in ms."""
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:6.2f} ms, p99 {p99 * 1000:6.2f} ms"


async def sdk_round_trips(url: str, count: int) -> list[float]:
    """The baseline: the SDK's own call_tool on the same server, no pivox in between; returns
    the start time of each call (the server notes when each arrives and leaves)."""
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"})
    starts = []
    async with Client(streamable_http_client(url, http_client=http), mode="legacy",
                      cache=None) as client:
        for _ in range(count):
            starts.append(time.monotonic())
            await client.call_tool("GetLiveContext", {})
            starts.append(time.monotonic())
    return starts


async def calls(count: int) -> dict[str, list[float]]:
    """`count` tool calls through the daemon, each on a fresh realtime connection (the
    bundled server calls the tool once per conversation)."""
    os.environ["PIVOX_BENCH_HA_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory(prefix="pivox-mcp-") as tmp:
        wav = soak.tone_wav(Path(tmp) / "mic.wav")
        options = ServerOptions(port=0, speed=0.0, reply="ramp", reply_ms=100,
                                tool_call="GetLiveContext", tool_arguments="{}")
        async with TimedHome() as home, RealtimeServer(options) as server:
            server_table = (f'mcp.servers=[{{ name = "home", url = "{home.url}", '
                            'token_env = "PIVOX_BENCH_HA_TOKEN" }]')
            config = load_config(None, [f"server.url={server.url}", "server.model=",
                                        "session.mode=push_to_talk", "button.enabled=false",
                                        "led.enabled=false", "button.min_hold_ms=0",
                                        "button.debounce_ms=0", "log.level=warning",
                                        server_table])
            daemon = TimedDaemon(config, soak.file_hardware(wav, 1.0))
            runner = asyncio.create_task(daemon.run())
            daemon.time_sdk_calls()
            while daemon.mcp is None or not daemon.mcp.tools():
                await asyncio.sleep(0.01)
            marks = await sdk_round_trips(home.url, count)
            starts, ends = marks[::2], marks[1::2]
            sdk = {"baseline": [e - s for s, e in zip(starts, ends, strict=True)],
                   "sdk_to_wire": [a - s for s, a in zip(starts, home.arrivals, strict=True)],
                   "sdk_to_result": [e - a for a, e in zip(home.answers, ends, strict=True)]}
            home.arrivals.clear()
            home.answers.clear()
            for index in range(count):
                daemon.link.reconnect()
                while len(server.connections) < index + 2 or daemon.machine.state is not (
                        State.IDLE):
                    await asyncio.sleep(0.005)
                while not any(any(t.name == "GetLiveContext" for t in e.session.tools)
                              for _, e in server.connections[-1].received
                              if isinstance(e, SessionUpdate)):
                    await asyncio.sleep(0.005)
                if not await soak.turn(daemon, 0.1):
                    raise RuntimeError(f"call {index} did not complete")
            outputs = [at for conn in server.connections for at, event in conn.received
                       if isinstance(event, FunctionCallOutput)]
            daemon.stop()
            await runner
    frames = TimedDaemon.call_frames
    assert len(frames) == len(home.arrivals) == len(home.answers) == len(outputs) == count
    return {
        "to_wire": [a - f for f, a in zip(frames, home.arrivals, strict=True)],
        "to_sdk": [c - f for f, c in zip(frames, TimedDaemon.sdk_calls, strict=True)],
        "from_bridge": [o - b for b, o in zip(TimedDaemon.bridge_outputs, outputs, strict=True)],
        "to_output": [o - a for a, o in zip(home.answers, outputs, strict=True)],
        "server": [a - r for r, a in zip(home.arrivals, home.answers, strict=True)],
        **sdk,
    }


LOAD = """
import resource, sys, time
start = time.perf_counter()
import pivox.daemon
{extra}
took = time.perf_counter() - start
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
print(took, rss)
"""


def loads(runs: int) -> dict[str, tuple[float, float]]:
    """Import time (s) and RSS (KiB) of fresh interpreters, without and with the MCP client."""
    out = {}
    for name, extra in (("without MCP", ""), ("with MCP client", "import mcp.client, httpx2")):
        samples = []
        for _ in range(runs):
            result = subprocess.run([sys.executable, "-c", LOAD.format(extra=extra)],
                                    capture_output=True, text=True, check=True,
                                    env={**os.environ, "PYTHONPATH": str(ROOT / "daemon")},
                                    cwd=tempfile.gettempdir())
            took, rss = result.stdout.split()
            samples.append((float(took), float(rss)))
        out[name] = (statistics.median(s[0] for s in samples),
                     statistics.median(s[1] for s in samples))
    return out


def main() -> None:
    args = harness.arguments(__doc__, calls=(200, "tool calls through the daemon"),
                             loads=(5, "fresh interpreters per import measurement"))
    timings = asyncio.run(calls(args.calls))
    print(f"{args.calls} tool calls through the daemon (GetLiveContext, loopback):")
    print(f"  MCP round trip, SDK alone (baseline):       {spread(timings['baseline'])}")
    print(f"    SDK call_tool -> request at the server:    {spread(timings['sdk_to_wire'])}")
    print(f"    answer sent -> SDK call_tool returns:      {spread(timings['sdk_to_result'])}")
    print(f"  MCP server handler, in the daemon's runs:   {spread(timings['server'])}")
    print(f"  function call received -> MCP request:      {spread(timings['to_wire'])}")
    print(f"    of which pivox, up to the SDK's call_tool: {spread(timings['to_sdk'])}")
    print(f"  MCP response -> function output received:   {spread(timings['to_output'])}")
    print(f"    of which pivox, bridge output -> received: {spread(timings['from_bridge'])}")
    base = statistics.median(timings["baseline"])
    for key in ("to_wire", "to_output"):
        print(f"  {key}: {statistics.median(timings[key]) / base:.2f}x the round trip")
    print(f"start-up, medians of {args.loads} fresh interpreters:")
    results = loads(args.loads)
    for name, (took, rss) in results.items():
        print(f"  {name:16s} import {took * 1000:6.0f} ms, RSS {rss / 1024:6.1f} MiB")
    (t0, r0), (t1, r1) = results.values()
    print(f"  the MCP client adds {(t1 - t0) * 1000:.0f} ms of imports and "
          f"{(r1 - r0) / 1024:.1f} MiB of RSS")


if __name__ == "__main__":
    main()
