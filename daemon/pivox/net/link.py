"""The link: one realtime session at a time, reopened with backoff, fed from a bounded outbox.

The link owns what lives only as long as a connection (the socket, the session id, the
outbox) and what outlives it (Gemini's resumption handle, the renewal deadline). The device
it serves (`LinkOwner`) gets every raw frame and is told when the link comes up or goes down;
it gives the link the tools to declare as a callable (the list may change while connected:
`update_session` declares the current one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol, cast

from pivox.config import MAX_INSTRUCTIONS_CHARS, Config
from pivox.core.backoff import Backoff
from pivox.core.errors import AuthError
from pivox.core.events import (
    ClientEvent,
    Dialect,
    GoAway,
    InputAudioAppend,
    ServerVad,
    SessionConfig,
    SessionCreated,
    SessionUpdate,
    Tool,
)
from pivox.host.systemd import Notifier
from pivox.host.waits import cancel_all
from pivox.net.secrets import ApiKey
from pivox.net.session import Connection, Endpoint, closed_by_auth, describe_close, ended_by_server
from pivox.protocol.gemini import LinkState
from pivox.protocol.provider import Wire, new_wire

log = logging.getLogger("pivox.link")

STABLE_SESSION_S = 10.0
"""A session that lasted this long resets the backoff."""
RENEW_GRACE_S = 60.0
"""How long an aging connection waits for a quiet moment before it is renewed anyway."""
OUTBOX_LIMIT = 250
"""Events (5 s of mic frames) that may wait for a slow link; past it new mic frames are dropped
(control events never are)."""
LINK_CLOSE_S = 1.0
"""Time the closing handshake gets; stop closes the link and the devices side by side, so the
process is gone within 2 s of SIGTERM (`pivox.cli.main` exits hard past STOP_DEADLINE_S)."""


def session_config(config: Config, tools: tuple[Tool, ...] = (),
                   prompts: tuple[str, ...] = ()) -> SessionConfig:
    """The `session.update` pivox asks for, from the config, the tools the model may call and
    the tool servers' prompts (appended to the instructions while the whole fits)."""
    s = config.session
    vad = None
    if s.mode != "push_to_talk":
        vad = ServerVad(
            threshold=s.vad_threshold,
            prefix_padding_ms=s.vad_prefix_padding_ms,
            silence_duration_ms=s.vad_silence_duration_ms,
        )
    instructions = "\n\n".join([s.instructions, *prompts])
    return SessionConfig(
        instructions=instructions if len(instructions) <= MAX_INSTRUCTIONS_CHARS else (
            s.instructions),
        voice=config.gemini.voice if config.server.provider == "gemini" else s.voice,
        turn_detection=vad,
        transcription_model=s.transcription_model or None,
        tools=tools,
    )


def endpoint(config: Config, api_key: ApiKey | None) -> Endpoint:
    """Where to connect, from the config and the key (`[gemini]` when it is the provider)."""
    s, g = config.server, config.gemini
    gemini = s.provider == "gemini"
    return Endpoint(
        url=g.url if gemini else s.url,
        model=g.model if gemini else s.model,
        dialect=cast(Dialect, s.dialect),  # one of its choices: the config checked it
        auth_style=g.auth_style if gemini else s.auth_style,
        api_key=api_key,
        ping_interval_s=s.ping_interval_s,
        ping_timeout_s=s.ping_timeout_s,
        connect_timeout_s=s.connect_timeout_s,
        provider=s.provider,
    )


class LinkOwner(Protocol):
    """What the link needs from the device it serves; `config` and `api_key` are read anew
    at every connect."""

    config: Config
    api_key: ApiKey | None

    def link_up(self) -> None: ...
    def link_down(self, *, auth: bool) -> None: ...
    async def on_frame(self, frame: bytes, wire: Wire) -> None: ...
    def quiet(self) -> bool: ...
    def idle_locally(self) -> bool: ...


class Link:
    """Keeps a session open until cancelled (`run`); `send` queues client events for it."""

    def __init__(self, owner: LinkOwner, notifier: Notifier, clock: Callable[[], float], *,
                 tools: Callable[[], tuple[Tool, ...]],
                 prompts: Callable[[], tuple[str, ...]] = tuple) -> None:
        """`tools`: the declarations of the tools the model may call now; `prompts`: the
        tool servers' prompts for the instructions (MCP `use_prompt`)."""
        self.owner = owner
        self.tools = tools
        self.prompts = prompts
        self.notifier = notifier
        self.clock = clock
        self.conn: Connection | None = None
        self.session_id: str | None = None
        self.state = LinkState()
        """What outlives a connection to Gemini: the session's resumption handle, the ids."""
        self.stats = {"connects": 0, "appends": 0, "dropped_frames": 0}
        self._outbox: deque[ClientEvent] = deque()
        self._outbox_ready = asyncio.Event()
        self._reconnect = asyncio.Event()
        self._connected_at = 0.0
        self._session_started = False
        self._renew_by: float | None = None
        """When set, reconnect (resuming the session) at the first quiet moment, at the
        latest at this time: the server said goAway, or the connection is getting old."""

    @property
    def up(self) -> bool:
        """True while a connection is open."""
        return self.conn is not None

    def send(self, event: ClientEvent) -> None:
        """Queue a client event; only mic frames are dropped when the link falls behind."""
        if self.conn is None:
            return
        if isinstance(event, InputAudioAppend):
            self.stats["appends"] += 1
            if len(self._outbox) >= OUTBOX_LIMIT:
                self.stats["dropped_frames"] += 1
                return
        self._outbox.append(event)
        self._outbox_ready.set()

    def update_session(self) -> None:
        """Declare the config and the current tools (a no-op while down): OpenAI takes a
        `session.update` at any time; Gemini takes its setup only as a connection's first
        message, so its connection is renewed (resuming the session) at the first quiet
        moment."""
        if self.conn is not None and self.owner.config.server.provider == "gemini":
            self._renew_by = self.clock() + RENEW_GRACE_S
        else:
            self._declare()

    def _declare(self) -> None:
        session = session_config(self.owner.config, self.tools(), self.prompts())
        self.send(SessionUpdate(session=session))

    def reconnect(self, *, resume: bool = True) -> None:
        """Close the session and open a new one; `resume` False starts a fresh session."""
        if not resume:
            self.state.handle = None
        self._reconnect.set()

    def session_created(self, event: SessionCreated) -> None:
        """The server confirmed the session: a resumption handle it gave is worth keeping."""
        self._session_started = True
        self.session_id = str(event.session.get("id") or "") or None
        log.info("session %s created", self.session_id,
                 extra={"SESSION_ID": self.session_id, "PIVOX_EVENT": "session_created"})

    def go_away(self, event: GoAway) -> None:
        """The server will close soon: renew the connection at the first quiet moment, at the
        latest halfway through the time it gives."""
        left_s = (event.time_left_ms or 0) / 1000
        log.info("server says goAway, %.1f s left; renewing at the first quiet moment", left_s,
                 extra={"SESSION_ID": self.session_id, "PIVOX_EVENT": "go_away"})
        self._renew_by = self.clock() + left_s / 2

    def check_renewal(self, now: float) -> None:
        """Renew an aging or goAway'd Gemini connection while nothing is being said: the new
        one resumes the session by its handle, and the device does not leave its state."""
        config = self.owner.config
        if self.conn is None or config.server.provider != "gemini":
            return
        limit = config.gemini.reconnect_after_s
        if self._renew_by is None and limit and now - self._connected_at >= limit:
            self._renew_by = now + RENEW_GRACE_S
        if self._renew_by is None:
            return
        if self.owner.quiet() or now >= self._renew_by:
            log.info("renewing the connection, resuming the session",
                     extra={"SESSION_ID": self.session_id, "PIVOX_EVENT": "renew"})
            self._renew_by = None
            self._reconnect.set()

    async def run(self) -> None:
        """Connect, serve, and reconnect with backoff, until cancelled."""
        backoff = Backoff(cap=self.owner.config.server.reconnect_max_s)
        while True:
            ep = endpoint(self.owner.config, self.owner.api_key)
            wire = new_wire(ep.provider, dialect=ep.dialect, model=ep.model, state=self.state)
            try:
                conn = await Connection.open(ep, wire)
            except AuthError as exc:
                await self._auth_failed(str(exc))
                continue
            except Exception as exc:  # any failure to connect is retried with backoff
                await self._offline(backoff, describe_close(exc))
                continue
            started = self.clock()
            reason = await self._serve(conn, ep)
            if self.clock() - started >= STABLE_SESSION_S:
                backoff.reset()
            if isinstance(reason, AuthError):
                await self._auth_failed(str(reason))
            elif reason is not None and not self._ended_quietly(reason, backoff):
                await self._offline(backoff, describe_close(reason))

    def _ended_quietly(self, reason: BaseException, backoff: Backoff) -> bool:
        """The server closed normally while the device sat idle with nothing sent (wake-word
        mode): reconnect at once, no OFFLINE, an info line. Only the first time in a row: a
        server that keeps closing gets the backoff and the warnings."""
        if not (ended_by_server(reason) and self.owner.idle_locally() and backoff.attempt == 0):
            return False
        backoff.next_delay()  # counted, not waited
        log.info("%s while idle; reconnecting", describe_close(reason),
                 extra={"PIVOX_EVENT": "session_ended"})
        return True

    async def _serve(self, conn: Connection, ep: Endpoint) -> BaseException | None:
        """Run one session; returns why it ended (None: a reload asked to reconnect)."""
        self.conn = conn
        self.stats["connects"] += 1
        self._outbox.clear()
        self._reconnect.clear()
        self._connected_at, self._session_started, self._renew_by = self.clock(), False, None
        log.info("connected to %s (%s)", ep.host,
                 "gemini" if ep.provider == "gemini" else ep.dialect,
                 extra={"PIVOX_EVENT": "connected"})
        self._declare()
        self.owner.link_up()
        tasks = {
            asyncio.create_task(self._receiver(conn), name="receiver"),
            asyncio.create_task(self._sender(conn), name="sender"),
            asyncio.create_task(self._reconnect.wait(), name="reconnect"),
        }
        result: BaseException | None = None
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            task = done.pop()
            exc = None if task.cancelled() else task.exception()
            if exc is not None and closed_by_auth(exc):
                result = AuthError(describe_close(exc))
            else:
                result = exc
        finally:
            await cancel_all(tasks, LINK_CLOSE_S)  # their errors were read above
            self.conn = None
            self._outbox.clear()
            self.session_id = None
            if not self._session_started:  # a handle the server would not resume: drop it
                self.state.handle = None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(LINK_CLOSE_S):
                    await conn.close()
        return result

    async def _receiver(self, conn: Connection) -> None:
        while True:
            await self.owner.on_frame(await conn.recv(), conn.wire)

    async def _sender(self, conn: Connection) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                await conn.send(self._outbox.popleft())

    async def _offline(self, backoff: Backoff, reason: str) -> None:
        delay = backoff.next_delay()
        self.owner.link_down(auth=False)
        log.warning("offline: %s; reconnecting in %.1f s (attempt %d)", reason, delay,
                    backoff.attempt, extra={"PIVOX_EVENT": "offline"})
        self.notifier.status(f"reconnecting in {delay:.0f} s (attempt {backoff.attempt}): "
                             f"{reason}")
        await asyncio.sleep(delay)

    async def _auth_failed(self, reason: str) -> None:
        delay = self.owner.config.server.auth_retry_s
        self.owner.link_down(auth=True)
        log.error("auth error: %s; check the API key; retrying in %.0f s", reason, delay,
                  extra={"PIVOX_EVENT": "auth_error"})
        self.notifier.status("auth error: check the API key")
        await asyncio.sleep(delay)
