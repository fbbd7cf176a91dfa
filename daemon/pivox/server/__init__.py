"""The bundled local realtime server (`pivox serve`): OpenAI Realtime or Gemini Live on loopback.

Run it standalone with `pivox serve [--host 127.0.0.1] [--port 8765]`, or in-process:

    async with RealtimeServer(ServerOptions(port=0, speed=0, reply="ramp")) as server:
        ...connect to server.url...

Modules: `conversation` (the pure per-connection protocol core), `checks` (what it refuses
in client payloads), `vad` (energy VAD), `voice` (reply audio), `pacing` (a reply's chunks at
`speed` x real time), `connection` (one connection's receive/send loop, both wires),
`faults` (fault injection; syntax in its docstring), `app` (the websockets layer), `gemini`
(the Gemini Live server, `--provider gemini`), `command` (the CLI entry).
"""

from __future__ import annotations

from pivox.server.app import ConnectionRecord, RealtimeServer
from pivox.server.command import main
from pivox.server.faults import Fault, parse_fault
from pivox.server.gemini import GeminiServer
from pivox.server.options import ServerOptions
from pivox.server.voice import ramp_position

__all__ = [
    "ConnectionRecord",
    "Fault",
    "GeminiServer",
    "RealtimeServer",
    "ServerOptions",
    "main",
    "parse_fault",
    "ramp_position",
]
