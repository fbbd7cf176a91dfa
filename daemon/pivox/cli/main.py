"""The `pivox` command: run, demo, serve, check, devices, and the control commands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence

from pivox import __version__
from pivox.cli.control import COMMANDS as CONTROL_COMMANDS
from pivox.cli.control import add_parsers as add_control_parsers
from pivox.cli.control import run_control
from pivox.config import Config, load_config
from pivox.core.errors import ConfigError, DeviceError, PivoxError

DEFAULT_CONFIG = "/etc/pivox/pivox.toml"
STOP_DEADLINE_S = 1.8
"""`pivox run` is gone this long after SIGTERM whatever hangs (systemd waits TimeoutStopSec)."""

log = logging.getLogger("pivox.cli")


def _config_args(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument("--config", "-c", default=default, metavar="PATH",
                        help=f"TOML config file (default: {default or 'built-in defaults'})")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="override one config key")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="pivox", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pivox {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the speaker daemon")
    _config_args(run, DEFAULT_CONFIG)

    demo = sub.add_parser("demo", help="the whole loop against the bundled server, no Pi needed")
    _config_args(demo, None)
    demo.add_argument("--input-wav", metavar="WAV", help="mic audio: a 24 kHz mono WAV")
    demo.add_argument("--output-wav", metavar="WAV", help="where the replies are written")
    demo.add_argument("--sound-card", action="store_true",
                      help="use the default sound devices (press Enter to talk)")
    demo.add_argument("--question", default="What time is it?",
                      help="what the generated prompt says")

    sub.add_parser("serve", help="run the bundled local realtime server", add_help=False)

    check = sub.add_parser("check", help="validate the config and try the devices")
    _config_args(check, DEFAULT_CONFIG)

    devices = sub.add_parser("devices", help="list sound devices and which the config selects")
    _config_args(devices, None)
    add_control_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["serve"]:
        from pivox.server import main as serve_main

        return serve_main(args_list[1:])
    args = build_parser().parse_args(args_list)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "demo":
            from pivox.cli.demo import run_demo

            return run_demo(args)
        if args.command == "check":
            from pivox.cli.check import run_check

            return run_check(_load(args))
        if args.command in CONTROL_COMMANDS:
            return run_control(args)
        if args.command == "devices":
            from pivox.audio.soundcard import format_devices, list_devices

            config = _load(args)
            print(format_devices(list_devices(), config.audio.input_device,
                                 config.audio.output_device))
            return 0
    except ConfigError as exc:
        print(f"pivox: config error: {exc}", file=sys.stderr)
        return 2
    except DeviceError as exc:
        print(f"pivox: device error: {exc}", file=sys.stderr)
        return 3
    except PivoxError as exc:
        print(f"pivox: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(f"unhandled command {args.command}")


def _load(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.overrides)


def _run(args: argparse.Namespace) -> int:
    from pivox.cli.hardware import pi_hardware
    from pivox.daemon import Daemon
    from pivox.host.logsetup import setup_logging
    from pivox.net.secrets import load_api_key

    config = _load(args)
    setup_logging(config.log.level, config.log.journal)
    api_key = load_api_key(config.server)
    if api_key is None:
        log.warning("no API key found (credential %r, $%s, api_key_file); the server will "
                    "likely refuse the connection", config.server.credential,
                    config.server.api_key_env)
    daemon = Daemon(config, pi_hardware(), config_path=args.config, api_key=api_key,
                    on_stop=_exit_after(STOP_DEADLINE_S))
    code = asyncio.run(daemon.run())
    hung = daemon.audio.calls.hung
    if hung:
        # The interpreter's teardown would wait on PortAudio (its threads, libpulse's atexit
        # work): the devices are abandoned already, so leave without it.
        log.warning("exiting with %d sound-device call(s) that never returned: %s", len(hung),
                    ", ".join(f"{c.what} of {c.device}" for c in hung))
        _hard_exit(code)
    return code


def _exit_after(seconds: float) -> Callable[[], None]:
    """A `Daemon` on_stop hook: if the process still runs `seconds` after stop, end it."""

    def expire() -> None:
        log.error("stopping took over %.1f s; exiting now", seconds,
                  extra={"PIVOX_EVENT": "stop_deadline"})
        _hard_exit(1)

    def arm() -> None:
        timer = threading.Timer(seconds, expire)
        timer.daemon = True
        timer.start()

    return arm


def _hard_exit(code: int) -> None:
    """os._exit, after flushing what the log handlers and stdio hold."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
