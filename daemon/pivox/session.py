"""The WebSocket edge: open a realtime session, send client events, receive raw frames.

No protocol rule lives here: frames go out encoded by `pivox.protocol.openai` and come
in as raw bytes for the daemon to decode. Auth failures are told apart from other
failures, because the daemon must not hammer a server that refused its key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from pivox.errors import AuthError
from pivox.events import ClientEvent, Dialect
from pivox.linkguard import TextOnlyConnection, same_origin_connect
from pivox.protocol.openai import encode_client_event
from pivox.secrets import ApiKey

log = logging.getLogger("pivox.session")

MAX_FRAME_BYTES = 4 * 1024 * 1024
"""Largest frame accepted; larger ones close the link (1009) and the daemon reconnects.

A Realtime audio delta is a few KB (the bundled server sends 100 ms, 6.4 KB); 4 MiB is 65 s
of PCM in one frame. Each frame in flight costs about three times its size (websockets'
read buffer, the frame, the decoded PCM), so this and MAX_QUEUE bound the daemon's memory
whatever a server sends (docs/faults.md: RSS under hostile frames)."""
MAX_QUEUE = 4
"""Frames websockets buffers ahead of the receiver before it stops reading the socket (its
default is 16: 16 x 32 MiB). The receiver never waits for the speaker (`pivox.playback`), so
the queue stays near empty and pongs are read as they come."""

AUTH_CLOSE_CODE = 1008


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where and how to connect; `api_key` None sends no auth header (local servers)."""

    url: str
    model: str
    dialect: Dialect
    auth_style: str
    api_key: ApiKey | None
    ping_interval_s: float
    ping_timeout_s: float
    connect_timeout_s: float

    @property
    def full_url(self) -> str:
        """The URL with `model=` added to its query unless it already names one."""
        parts = urlsplit(self.url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if self.model and not any(key == "model" for key, _ in query):
            query.append(("model", self.model))
        return urlunsplit(parts._replace(query=urlencode(query)))

    @property
    def host(self) -> str:
        """The server's host name, for status lines."""
        return urlsplit(self.url).hostname or self.url

    def headers(self) -> list[tuple[str, str]]:
        """Handshake headers: auth by the configured style, and the beta opt-in."""
        headers: list[tuple[str, str]] = []
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

    def __init__(self, ws: ClientConnection, endpoint: Endpoint) -> None:
        self._ws = ws
        self.endpoint = endpoint

    @classmethod
    async def open(cls, endpoint: Endpoint) -> Connection:
        """Connect; raises AuthError on HTTP 401/403, OSError or InvalidHandshake otherwise."""
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
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise AuthError(f"server refused the API key (HTTP {status})") from None
            raise
        return cls(ws, endpoint)

    async def send(self, event: ClientEvent) -> None:
        """Encode one client event in the endpoint's dialect and send it."""
        await self._ws.send(encode_client_event(event, self.endpoint.dialect))

    async def recv(self) -> bytes:
        """The next frame's raw bytes (text frames are not decoded to str)."""
        frame = await self._ws.recv(decode=False)
        return frame if isinstance(frame, bytes) else frame.encode()

    async def close(self) -> None:
        """Close cleanly (code 1000)."""
        await self._ws.close()


def closed_by_auth(exc: BaseException) -> bool:
    """True when a closed connection was closed for a policy (auth) violation."""
    return isinstance(exc, ConnectionClosed) and exc.rcvd is not None and (
        exc.rcvd.code == AUTH_CLOSE_CODE
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
