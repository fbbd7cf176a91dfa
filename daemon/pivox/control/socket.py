"""The local control socket: one JSON request per line in, one JSON reply per line out.

A request is `{"cmd": NAME}` or `{"cmd": NAME, "arg": VALUE}` (commands.py lists them);
the reply is `{"ok": true, ...}` or `{"ok": false, "error": "..."}`. The socket lives in the
runtime directory (`$RUNTIME_DIRECTORY` under systemd's `RuntimeDirectory=pivox`, else
`$XDG_RUNTIME_DIR/pivox`), mode 0660 so members of the `pivox` group may use it.

No client can stall the daemon: a line over MAX_LINE_BYTES, bad JSON or an unknown command
gets an error reply; a client silent for IDLE_TIMEOUT_S is closed; a reply a client does not
read within WRITE_TIMEOUT_S (the transport's buffer is bounded) closes it; past MAX_CLIENTS
a new client is told `busy` and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import stat
from collections.abc import Mapping

import orjson

from pivox.control.commands import ControlHost, Refused, Reply, parse_command, run_command
from pivox.host.logsafe import shown
from pivox.host.waits import cancel_all

log = logging.getLogger("pivox.control.socket")

SOCKET_NAME = "control.sock"
SYSTEM_RUNTIME_DIR = "/run/pivox"
"""Where systemd puts `RuntimeDirectory=pivox`; the CLI looks there first."""
MAX_LINE_BYTES = 4096
"""Longest request line: a command and a text of commands.MAX_TEXT_CHARS, escaped."""
IDLE_TIMEOUT_S = 30.0
WRITE_TIMEOUT_S = 2.0
CLOSE_S = 1.0
"""How long close() waits for the clients' tasks to end after their cancel."""
MAX_CLIENTS = 64
WRITE_BUFFER_BYTES = 64 * 1024


def runtime_dir(environ: Mapping[str, str] = os.environ) -> str | None:
    """The daemon's runtime directory: systemd's, else $XDG_RUNTIME_DIR/pivox, else None."""
    systemd = environ.get("RUNTIME_DIRECTORY", "")
    if systemd:
        return systemd.split(":")[0]
    xdg = environ.get("XDG_RUNTIME_DIR", "")
    return os.path.join(xdg, "pivox") if xdg else None


def client_socket_path(environ: Mapping[str, str] = os.environ) -> str | None:
    """Where a CLI finds the daemon: $PIVOX_SOCKET, the system unit's, else the user's."""
    if environ.get("PIVOX_SOCKET"):
        return environ["PIVOX_SOCKET"]
    if os.path.isdir(SYSTEM_RUNTIME_DIR):  # the unit's, even where its mode keeps us out
        return os.path.join(SYSTEM_RUNTIME_DIR, SOCKET_NAME)
    directory = runtime_dir(environ)
    return os.path.join(directory, SOCKET_NAME) if directory else None


def handle_line(host: ControlHost, line: bytes) -> Reply:
    """One request line → its reply; every failure is a Reply, never an exception."""
    try:
        request = orjson.loads(line)
    except orjson.JSONDecodeError:
        return Reply(ok=False, message="bad request: not JSON")
    if not isinstance(request, dict) or "cmd" not in request:
        return Reply(ok=False, message='bad request: expected {"cmd": NAME, "arg": VALUE}')
    extra = set(request) - {"cmd", "arg"}
    if extra:
        return Reply(ok=False, message=f"bad request: unknown key {shown(sorted(extra)[0])}")
    command = parse_command(request["cmd"], request.get("arg"))
    if isinstance(command, Refused):
        return Reply(ok=False, message=command.message)
    return run_command(host, command)


async def _answers(path: str) -> bool:
    """True when something accepts connections on the socket at `path`."""
    try:
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_unix_connection(path)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


def _encode(reply: Reply) -> bytes:
    return orjson.dumps(reply.to_json()) + b"\n"


class ControlSocket:
    """Serves `handle_line` on a Unix socket; start() binds, close() unbinds."""

    def __init__(self, host: ControlHost, path: str) -> None:
        self.host = host
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.refused = 0
        """Clients turned away (busy) or dropped (too slow, too long a line)."""

    async def start(self) -> None:
        """Bind the socket (replacing a stale one), mode 0660."""
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                if await _answers(self.path):
                    raise OSError(errno.EADDRINUSE, "another pivox serves it")
                os.unlink(self.path)  # a socket left by a daemon that was killed
        self._server = await asyncio.start_unix_server(
            self._client, path=self.path, limit=MAX_LINE_BYTES + 1)
        os.chmod(self.path, 0o660)
        log.info("control socket at %s", self.path, extra={"PIVOX_EVENT": "control_socket"})

    async def close(self) -> None:
        """Stop listening, end every client, remove the socket file."""
        if self._server is not None:
            self._server.close()
        await cancel_all(list(self._clients), CLOSE_S)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            writer.transport.set_write_buffer_limits(high=WRITE_BUFFER_BYTES)
            if len(self._clients) >= MAX_CLIENTS:
                self.refused += 1
                await self._send(writer, Reply(ok=False, message="busy: too many clients"))
                return
            self._clients.add(task)
            await self._serve(reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT_S):
                    line = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                self.refused += 1
                await self._send(writer, Reply(
                    ok=False, message=f"bad request: line over {MAX_LINE_BYTES} bytes"))
                return  # the rest of the line is not worth reading
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():  # a last request without its newline
                    await self._send(writer, self._handle(exc.partial))
                return
            if line.strip():
                await self._send(writer, self._handle(line))

    def _handle(self, line: bytes) -> Reply:
        try:
            return handle_line(self.host, line)
        except Exception:  # a bug behind the host: the client hears of it, the daemon runs on
            log.exception("control command failed", extra={"PIVOX_EVENT": "control_client"})
            return Reply(ok=False, message="internal error; see the daemon's log")

    async def _send(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        writer.write(_encode(reply))
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await writer.drain()
        except TimeoutError:
            self.refused += 1
            log.info("control client does not read its replies; closed",
                     extra={"PIVOX_EVENT": "control_client"})
            writer.transport.abort()
            raise
