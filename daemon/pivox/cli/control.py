"""`pivox status|say|ask|mute|volume|timers|stop`: one request to the running daemon's socket."""

from __future__ import annotations

import argparse
import socket
from typing import Any

import orjson

from pivox.control.socket import MAX_LINE_BYTES, client_socket_path

TIMEOUT_S = 5.0
COMMANDS = ("status", "say", "ask", "mute", "volume", "timers", "stop")


def add_parsers(sub: Any) -> None:
    """The control subcommands, on the `pivox` parser's subparsers."""
    def parser(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help)
        p.add_argument("--socket", metavar="PATH",
                       help="the daemon's control socket (default: found in the runtime dir)")
        return p

    parser("status", "show the running daemon's state").add_argument(
        "--json", action="store_true", help="the status as JSON")
    parser("say", "announce TEXT: a chime, then the text spoken").add_argument("text")
    parser("ask", "speak the question TEXT, then listen without the wake word").add_argument(
        "text")
    parser("mute", "mute or unmute the microphone").add_argument("state", choices=("on", "off"))
    parser("volume", "set the speaker volume").add_argument("level", type=int)
    parser("timers", "list the running timers")
    parser("stop", "end a reply, an announcement or a ringing timer")


def run_control(args: argparse.Namespace) -> int:
    """Send the command, print the reply; 0 when the daemon did it, 1 when it refused, 4 when
    no daemon answered."""
    arg: Any = {"say": getattr(args, "text", None), "ask": getattr(args, "text", None),
                "mute": getattr(args, "state", None) == "on",
                "volume": getattr(args, "level", None)}.get(args.command)
    path = args.socket or client_socket_path()
    if path is None:
        print("pivox: no control socket: set PIVOX_SOCKET or XDG_RUNTIME_DIR, or --socket")
        return 4
    try:
        reply = request(path, args.command, arg)
    except OSError as exc:
        print(f"pivox: no daemon answers at {path}: {exc.strerror or exc}")
        return 4
    if not reply.get("ok"):
        print(f"pivox: {reply.get('error', 'refused')}")
        return 1
    if args.command == "status":
        status = reply["status"]
        print(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode() if args.json
              else format_status(status))
    elif args.command == "timers":
        print(format_timers(reply["timers"]))
    return 0


def request(path: str, cmd: str, arg: Any = None) -> dict[str, Any]:
    """One request and its reply over the socket (OSError when none comes)."""
    body: dict[str, Any] = {"cmd": cmd} if arg is None else {"cmd": cmd, "arg": arg}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(TIMEOUT_S)
        conn.connect(path)
        conn.sendall(orjson.dumps(body) + b"\n")
        data = b""
        while not data.endswith(b"\n") and len(data) < 16 * MAX_LINE_BYTES:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    try:
        reply = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise OSError("the daemon's reply is not JSON") from None
    if not isinstance(reply, dict):
        raise OSError("the daemon's reply is not a JSON object")
    return reply


def format_status(status: dict[str, Any]) -> str:
    """The status as a few human lines."""
    latency = status.get("last_latency_ms")
    lines = [
        f"state:    {status['state']}",
        f"link:     {'up' if status['link'] else 'down'} ({status['provider']})",
        f"latency:  {'-' if latency is None else f'{latency} ms'} (last turn)",
        f"mute:     {'on' if status['muted'] else 'off'}",
        f"volume:   {status['volume']}",
        f"timers:   {len(status['timers'])}",
        f"mqtt:     {status['mqtt']}",
    ]
    return "\n".join(lines)


def format_timers(timers: list[dict[str, Any]]) -> str:
    """One line per timer, or a line saying there is none."""
    if not timers:
        return "no timers"
    return "\n".join(f"{t['name']}: {t['due_in_s']:.0f} s left" for t in timers)
