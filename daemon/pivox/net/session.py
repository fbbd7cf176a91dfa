"""The WebSocket edge: open a realtime session, send client events, receive raw frames.

No protocol rule lives here: frames go out encoded by the connection's `Wire`
(`pivox.protocol.provider`: OpenAI Realtime or Gemini Live) and come in as raw bytes for the
daemon to decode with the same wire. Auth failures are told apart from other
failures, because the daemon must not hammer a server that refused its key.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from pivox.core.errors import AuthError
from pivox.core.events import ClientEvent, Dialect
from pivox.net.guard import TextOnlyConnection, same_origin_connect
from pivox.net.secrets import ApiKey
from pivox.protocol.provider import OpenAIWire, Wire

log = logging.getLogger("pivox.session")

MAX_FRAME_BYTES = 4 * 1024 * 1024
"""Largest frame accepted; larger ones close the link (1009) and the daemon reconnects.

A Realtime audio delta is a few KB (the bundled server sends 100 ms, 6.4 KB); 4 MiB is 65 s
of PCM in one frame. Each frame in flight costs about three times its size (websockets'
read buffer, the frame, the decoded PCM), so this and MAX_QUEUE bound the daemon's memory
whatever a server sends (docs/faults.md: RSS under hostile frames)."""
MAX_QUEUE = 4
"""Frames websockets buffers ahead of the receiver before it stops reading the socket (its
default is 16: 16 x 32 MiB). The receiver never waits for the speaker (`pivox.audio.playback`), so
the queue stays near empty and pongs are read as they come."""

AUTH_CLOSE_CODE = 1008
SECRET_HEADERS = frozenset({"authorization", "api-key", "x-goog-api-key"})
_KEY_PARAM = re.compile(r"([?&]key=)[^&\s]*")


class _RedactSecrets(logging.Filter):
    """websockets logs the request line and every header at debug level: hide the key."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() in SECRET_HEADERS:
            record.args = (args[0], "***")
            return True
        message = record.getMessage()
        redacted = _KEY_PARAM.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_WS_LOG = logging.getLogger("pivox.session.websockets")
_WS_LOG.addFilter(_RedactSecrets())
GEMINI_AUTH_CLOSE = (1007, "API key not valid")
"""Gemini accepts the handshake and closes with 1007 "API key not valid. Please pass ..."."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where and how to connect; `api_key` None sends no auth header (local servers).

    `provider` "gemini": no `model=` in the URL (the setup names it); the key goes in
    `x-goog-api-key` (`auth_style` "header") or the `key` query parameter ("query").
    """

    url: str
    model: str
    dialect: Dialect
    auth_style: str
    api_key: ApiKey | None
    ping_interval_s: float
    ping_timeout_s: float
    connect_timeout_s: float
    provider: str = "openai"

    @property
    def full_url(self) -> str:
        """The URL to connect to: OpenAI's with `model=` added to its query unless it already
        names one; Gemini's with `key=` when the key goes in the query. Never log it."""
        parts = urlsplit(self.url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if self.provider == "gemini":
            if self.api_key is not None and self.auth_style == "query":
                query = [(k, v) for k, v in query if k != "key"]
                query.append(("key", self.api_key.reveal()))
        elif self.model and not any(key == "model" for key, _ in query):
            query.append(("model", self.model))
        return urlunsplit(parts._replace(query=urlencode(query)))

    @property
    def redacted_url(self) -> str:
        """The URL as it may be logged: scheme, host, port and path only."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(netloc=parts.hostname or "", query="", fragment=""))

    @property
    def host(self) -> str:
        """The server's host name, for status lines."""
        return urlsplit(self.url).hostname or self.url

    def headers(self) -> list[tuple[str, str]]:
        """Handshake headers: auth by the configured style, and the beta opt-in."""
        headers: list[tuple[str, str]] = []
        if self.provider == "gemini":
            if self.api_key is not None and self.auth_style == "header":
                headers.append(("x-goog-api-key", self.api_key.reveal()))
            return headers
        if self.api_key is not None:
            if self.auth_style == "api-key":
                headers.append(("api-key", self.api_key.reveal()))
            else:
                headers.append(("Authorization", f"Bearer {self.api_key.reveal()}"))
        if self.dialect == "beta":
            headers.append(("OpenAI-Beta", "realtime=v1"))
        return headers


class Connection:
    """One open realtime session over WebSocket."""

    def __init__(self, ws: ClientConnection, endpoint: Endpoint, wire: Wire) -> None:
        self._ws = ws
        self.endpoint = endpoint
        self.wire = wire

    @classmethod
    async def open(cls, endpoint: Endpoint, wire: Wire | None = None) -> Connection:
        """Connect; raises AuthError on HTTP 401/403, OSError or InvalidHandshake otherwise.

        `wire` (default: OpenAI in the endpoint's dialect) encodes what `send` is given; the
        caller decodes `recv`'s frames with it (`conn.wire`)."""
        try:
            ws = await same_origin_connect(
                endpoint.full_url,
                create_connection=TextOnlyConnection,  # refuses binary messages
                additional_headers=endpoint.headers(),
                open_timeout=endpoint.connect_timeout_s,
                ping_interval=endpoint.ping_interval_s,
                ping_timeout=endpoint.ping_timeout_s,
                # A dead link answers no close frame either: give up as soon as on a pong.
                close_timeout=endpoint.ping_timeout_s,
                max_size=MAX_FRAME_BYTES,
                max_queue=MAX_QUEUE,
                # The server's audio is base64: deflate would cost CPU and save little.
                compression=None,
                logger=_WS_LOG,  # websockets' own debug lines, with the key redacted
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise AuthError(f"server refused the API key (HTTP {status})") from None
            raise
        except (InvalidURI, ValueError):  # their text may hold the URL, which may hold the key
            raise OSError(f"invalid server URL {endpoint.redacted_url}") from None
        return cls(ws, endpoint, wire or OpenAIWire(endpoint.dialect))

    async def send(self, event: ClientEvent) -> None:
        """Encode one client event with the connection's wire and send its frames."""
        for frame in self.wire.encode(event):
            await self._ws.send(frame)

    async def recv(self) -> bytes:
        """The next frame's raw bytes (text frames are not decoded to str)."""
        frame = await self._ws.recv(decode=False)
        return frame if isinstance(frame, bytes) else frame.encode()

    async def close(self) -> None:
        """Close cleanly (code 1000)."""
        await self._ws.close()


def closed_by_auth(exc: BaseException) -> bool:
    """True when a closed connection was closed for a policy (auth) violation, or by Gemini
    for a bad key."""
    if not isinstance(exc, ConnectionClosed) or exc.rcvd is None:
        return False
    code, reason = exc.rcvd.code, exc.rcvd.reason
    return code == AUTH_CLOSE_CODE or (
        code == GEMINI_AUTH_CLOSE[0] and GEMINI_AUTH_CLOSE[1] in reason
    )


def ended_by_server(exc: BaseException) -> bool:
    """True for a normal close by the server (1000, 1001), e.g. at its session's maximum length."""
    return isinstance(exc, ConnectionClosed) and exc.rcvd is not None and (
        exc.rcvd.code in (1000, 1001)
    )


def describe_close(exc: BaseException) -> str:
    """A short human reason for a lost or failed connection."""
    if isinstance(exc, ConnectionClosed):
        if exc.rcvd is not None:
            reason = f" ({exc.rcvd.reason})" if exc.rcvd.reason else ""
            return f"server closed with {exc.rcvd.code}{reason}"
        if exc.sent is not None:  # pivox gave up: keep-alive timeout, frame too big, ...
            return f"connection dropped: closed with {exc.sent.code} ({exc.sent.reason})"
        return "connection dropped"
    if isinstance(exc, InvalidStatus):
        return f"handshake refused (HTTP {exc.response.status_code})"
    if isinstance(exc, InvalidHandshake | OSError | TimeoutError):
        return f"cannot connect: {exc or type(exc).__name__}"
    return f"{type(exc).__name__}: {exc}"
