"""What pivox refuses of a WebSocket peer before any frame reaches the daemon.

- A redirect to another origin (scheme, host or port) is not followed: websockets would
  follow it and, with `auth_style = "api-key"`, send the key along (it strips only
  Authorization, Cookie and Proxy-Authorization). A same-origin redirect is followed.
  Either way the log says where the server redirected to.
- Binary messages are dropped and logged: the Realtime API sends JSON in text frames
  only, and `recv(decode=False)` would otherwise hand binary data to the decoder as if it
  were text.
"""

from __future__ import annotations

import logging
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import SecurityError
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

log = logging.getLogger("pivox.linkguard")


class TextOnlyConnection(ClientConnection):
    """A client connection that drops binary messages; `binary_dropped` counts them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.binary_dropped = 0
        self._in_binary = False

    def process_event(self, event: Any) -> None:
        """Hand text frames and control frames on; drop every fragment of a binary message."""
        if isinstance(event, Frame) and (
            event.opcode is Opcode.BINARY or (event.opcode is Opcode.CONT and self._in_binary)
        ):
            if event.opcode is Opcode.BINARY:
                self.binary_dropped += 1
                log.warning("refused a binary message (%d bytes): the server must send text",
                            len(event.data), extra={"PIVOX_EVENT": "binary_frame"})
            self._in_binary = not event.fin
            return
        super().process_event(event)


class same_origin_connect(connect):  # lowercase, like the `connect` class it extends
    """`websockets.connect` that follows a redirect only within the configured origin."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        """The new URI of a same-origin redirect; a SecurityError for any other origin."""
        target = super().process_redirect(exc)
        if not isinstance(target, str):
            return target
        old, new = parse_uri(self.uri), parse_uri(target)
        if (new.secure, new.host, new.port) != (old.secure, old.host, old.port):
            log.warning("server redirected to %s: not followed, the key goes to %s:%d only",
                        target, old.host, old.port, extra={"PIVOX_EVENT": "redirect"})
            return SecurityError(f"redirect to another origin not followed: {new.host}:{new.port}")
        log.info("server redirected to %s (same origin): following", target,
                 extra={"PIVOX_EVENT": "redirect"})
        return target
