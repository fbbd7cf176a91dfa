"""The API key: found in a systemd credential, an environment variable or a private file.

The key lives in an `ApiKey`, whose repr and str show only its length and origin, so it
cannot leak into a log line or an exception by accident; `reveal()` is for the auth header.
No error message built here contains the key.
"""

from __future__ import annotations

import hmac
import os
import stat
from collections.abc import Mapping

from pivox.config import ServerSettings
from pivox.core.errors import ConfigError
from pivox.host.logsafe import register_secret

MAX_KEY_BYTES = 4096
"""Longest key file or credential read; a larger one is refused, not truncated."""


class ApiKey:
    """A secret string that does not show itself; `source` says where it was found."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, *, source: str) -> None:
        self._value = value
        self.source = source
        register_secret(value)  # whatever logs it by mistake, the log shows [redacted]

    def reveal(self) -> str:
        """The key itself, for the authentication header only."""
        return self._value

    def __repr__(self) -> str:
        return f"ApiKey(<{len(self._value)} chars from {self.source}>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        """The same key, wherever it was found (compared in constant time)."""
        return isinstance(other, ApiKey) and hmac.compare_digest(
            self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an ApiKey is not pickled")


def load_api_key(
    server: ServerSettings, *, environ: Mapping[str, str] = os.environ
) -> ApiKey | None:
    """The first key found: systemd credential, then `api_key_env`, then `api_key_file`.

    None when no source holds one; a blank credential counts as none (the unit's fallback
    for a missing key file). A key file that is empty, or a key that holds whitespace
    or control characters inside the key, and a key file that is missing or readable by
    group or others, raise ConfigError.
    """
    directory = environ.get("CREDENTIALS_DIRECTORY", "")
    if server.credential and directory:
        path = os.path.join(directory, server.credential)
        if os.path.exists(path):
            # systemd makes credentials private to the service: no mode check here. A blank
            # one is the unit's SetCredential= fallback for a missing key file: no key there.
            value = _read(path, "server.credential")
            if value:
                return _checked(value, path, "server.credential")
    value = environ.get(server.api_key_env, "").strip() if server.api_key_env else ""
    if value:
        source = f"${server.api_key_env}"
        return _checked(value, source, "server.api_key_env")
    if server.api_key_file:
        path = os.path.expanduser(server.api_key_file)
        return _checked(
            _read(path, "server.api_key_file", private=True), path, "server.api_key_file"
        )
    return None


def _read(path: str, key: str, *, private: bool = False) -> str:
    """The stripped text of a key file; when `private`, refuse one others may read."""
    try:
        # O_NONBLOCK: a FIFO put there must not hang the daemon before the type check
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as error:
        raise ConfigError(
            f"cannot read the API key: {error.strerror}", path=path, key=key
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("the API key file is not a regular file", path=path, key=key)
        mode = stat.S_IMODE(info.st_mode)
        if private and mode & (stat.S_IRGRP | stat.S_IROTH):
            raise ConfigError(
                f"is readable by group/others (mode {mode:04o}); chmod 600 it",
                path=path,
                key=key,
            )
        data = os.read(fd, MAX_KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_KEY_BYTES:
        raise ConfigError(f"the API key file is over {MAX_KEY_BYTES} bytes", path=path, key=key)
    try:
        return data.decode().strip()
    except UnicodeDecodeError:
        raise ConfigError("the API key is not UTF-8 text", path=path, key=key) from None


def _checked(value: str, source: str, key: str) -> ApiKey:
    """An ApiKey of `value`, which must be non-empty printable ASCII without spaces."""
    if not value:
        raise ConfigError("the API key is empty", path=source, key=key)
    if not (value.isascii() and value.isprintable()) or " " in value:
        # a newline here would split the auth header; never echo the value
        raise ConfigError(
            f"the API key ({len(value)} chars) holds whitespace or control characters",
            path=source,
            key=key,
        )
    return ApiKey(value, source=source)
