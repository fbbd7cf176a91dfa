"""The one exception tree of pivox, split by who is to blame."""

from __future__ import annotations


class PivoxError(Exception):
    """Base of every error pivox raises or returns."""


class ProtocolError(PivoxError):
    """The server sent data that breaks the protocol; returned as a value by decoders.

    `event_type` is the wire `type` when it could be read, else None.
    """

    def __init__(self, message: str, *, event_type: str | None = None) -> None:
        self.event_type = event_type
        self.message = message
        where = f"{event_type}: " if event_type else ""
        super().__init__(f"{where}{message}")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ProtocolError)
            and other.event_type == self.event_type
            and other.message == self.message
        )

    def __hash__(self) -> int:
        return hash((self.event_type, self.message))


class ConfigError(PivoxError):
    """The configuration is invalid; names the file and the key."""

    def __init__(self, message: str, *, path: str, key: str | None = None) -> None:
        self.path = path
        self.key = key
        self.message = message
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(f"{where}{message}")


class DeviceError(PivoxError):
    """A sound or GPIO device failed; names the device and the underlying error."""

    def __init__(self, message: str, *, device: str) -> None:
        self.device = device
        self.message = message
        super().__init__(f"{device}: {message}")


class AuthError(PivoxError):
    """The server refused the API key (HTTP 401/403, close 1008 or `invalid_api_key`)."""
