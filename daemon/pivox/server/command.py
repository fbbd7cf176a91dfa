"""`pivox serve`: run the local realtime server until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from pivox.host.logsafe import SafeRecords
from pivox.server.app import RealtimeServer
from pivox.server.faults import parse_fault
from pivox.server.gemini import GeminiServer
from pivox.server.options import ServerOptions
from pivox.server.voice import REPLY_KINDS

log = logging.getLogger("pivox.server")


def build_parser() -> argparse.ArgumentParser:
    """The `pivox serve` flags; each sets the `ServerOptions` field of the same name."""
    defaults = ServerOptions()
    parser = argparse.ArgumentParser(
        prog="pivox serve",
        description="A local OpenAI-Realtime- or Gemini-Live-compatible server for pivox "
        "demos and tests.",
    )
    parser.add_argument("--provider", choices=("openai", "gemini"), default="openai",
                        help="wire format: OpenAI Realtime or Gemini Live")
    parser.add_argument("--go-away-s", type=float, default=None,
                        help="gemini: send goAway this long after each connection opens")
    parser.add_argument("--host", default=defaults.host, help="bind address (loopback)")
    parser.add_argument("--port", type=int, default=defaults.port, help="0 picks a free port")
    parser.add_argument(
        "--api-key", default=os.environ.get("PIVOX_SERVER_API_KEY"),
        help="accept only this key: Bearer (openai) or x-goog-api-key / ?key= (gemini) "
        "(env PIVOX_SERVER_API_KEY; default: any key)",
    )
    parser.add_argument("--chunk-ms", type=int, default=defaults.chunk_ms,
                        help="audio per delta, ms")
    parser.add_argument("--speed", type=float, default=defaults.speed,
                        help="x real time; 1 = real time, 0 = as fast as possible")
    parser.add_argument("--reply", choices=REPLY_KINDS, default=defaults.reply)
    parser.add_argument("--reply-ms", type=int, default=defaults.reply_ms,
                        help="fixed length of ramp and tones replies")
    parser.add_argument("--tool-call", default=defaults.tool_call,
                        help="a declared tool the first response calls")
    parser.add_argument("--tool-arguments", default=defaults.tool_arguments,
                        help="the JSON arguments of that call")
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC",
                        help="fault for every connection, e.g. close:1011:after=40 (repeatable)")
    parser.add_argument("--url-faults", action="store_true",
                        help="let clients add faults with ?fault= in the URL (for tests)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every event received and sent")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv`, serve until a signal, return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = ServerOptions(
            host=args.host, port=args.port, api_key=args.api_key, chunk_ms=args.chunk_ms,
            speed=args.speed, reply=args.reply, reply_ms=args.reply_ms,
            tool_call=args.tool_call, tool_arguments=args.tool_arguments,
            faults=tuple(parse_fault(spec) for spec in args.fault),
            url_faults=args.url_faults,
        )
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    for handler in logging.getLogger().handlers:  # keys redacted, peer text and floods bounded
        handler.addFilter(SafeRecords())  # (out of fds, asyncio logs each failed accept)
    if args.provider == "openai" and args.go_away_s is not None:
        parser.error("--go-away-s: only the gemini provider sends goAway")
    try:
        asyncio.run(_serve(options, args.provider, args.go_away_s))
    except OSError as exc:
        log.error("cannot serve on %s:%s: %s", options.host, options.port, exc)
        return 1
    return 0


async def _serve(options: ServerOptions, provider: str, go_away_s: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = (GeminiServer(options, go_away_s=go_away_s) if provider == "gemini"
              else RealtimeServer(options))
    async with server:
        print(f"pivox serve: listening on {server.url}", flush=True)
        await stop.wait()
