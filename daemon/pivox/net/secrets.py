"""The API key (and each MCP server's token, the MQTT password): found in a systemd credential,
an environment variable or a private file.

The key lives in an `ApiKey`, whose repr and str show only its length and origin, so it
cannot leak into a log line or an exception by accident; `reveal()` is for the auth header.
No error message built here contains the key.
"""

from __future__ import annotations

import hmac
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from pivox.config import McpServerSettings, MqttSettings, ServerSettings
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


@dataclass(frozen=True, slots=True)
class _Sources:
    """Where one secret may be found, and the config keys that name each place."""

    credential: str
    env: str
    file: str
    keys: tuple[str, str, str]
    what: str


def load_api_key(
    server: ServerSettings, *, environ: Mapping[str, str] = os.environ
) -> ApiKey | None:
    """The first key found: systemd credential, then `api_key_env`, then `api_key_file`.

    None when no source holds one; a blank credential counts as none (the unit's fallback
    for a missing key file). A key file that is empty, or a key that holds whitespace
    or control characters inside the key, and a key file that is missing or readable by
    group or others, raise ConfigError.
    """
    keys = ("server.credential", "server.api_key_env", "server.api_key_file")
    return _load(_Sources(server.credential, server.api_key_env, server.api_key_file, keys,
                          "the API key"), environ)


def load_mcp_token(
    server: McpServerSettings, index: int, *, environ: Mapping[str, str] = os.environ
) -> ApiKey | None:
    """The bearer token of `[[mcp.servers]]` entry `index`, by the API key's rules:
    `token_credential`, then `token_env`, then `token_file` (mode 0600 or stricter)."""
    at = f"mcp.servers[{index}]"
    keys = (f"{at}.token_credential", f"{at}.token_env", f"{at}.token_file")
    return _load(_Sources(server.token_credential, server.token_env, server.token_file, keys,
                          "the token"), environ)


def load_mqtt_password(
    mqtt: MqttSettings, *, environ: Mapping[str, str] = os.environ
) -> ApiKey | None:
    """The MQTT broker's password, by the API key's rules: `password_credential`, then
    `password_env`, then `password_file` (mode 0600 or stricter)."""
    keys = ("mqtt.password_credential", "mqtt.password_env", "mqtt.password_file")
    return _load(_Sources(mqtt.password_credential, mqtt.password_env, mqtt.password_file, keys,
                          "the MQTT password"), environ)


def _load(sources: _Sources, environ: Mapping[str, str]) -> ApiKey | None:
    credential_key, env_key, file_key = sources.keys
    what = sources.what
    directory = environ.get("CREDENTIALS_DIRECTORY", "")
    if sources.credential and directory:
        path = os.path.join(directory, sources.credential)
        if os.path.exists(path):
            # systemd makes credentials private to the service: no mode check here. A blank
            # one is the unit's SetCredential= fallback for a missing key file: no key there.
            value = _read(path, credential_key, what)
            if value:
                return _checked(value, path, credential_key, what)
    value = environ.get(sources.env, "").strip() if sources.env else ""
    if value:
        return _checked(value, f"${sources.env}", env_key, what)
    if sources.file:
        path = os.path.expanduser(sources.file)
        return _checked(_read(path, file_key, what, private=True), path, file_key, what)
    return None


def _read(path: str, key: str, what: str, *, private: bool = False) -> str:
    """The stripped text of a key file; when `private`, refuse one others may read."""
    try:
        # O_NONBLOCK: a FIFO put there must not hang the daemon before the type check
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as error:
        raise ConfigError(
            f"cannot read {what}: {error.strerror}", path=path, key=key
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{what} file is not a regular file", path=path, key=key)
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
        raise ConfigError(f"{what} file is over {MAX_KEY_BYTES} bytes", path=path, key=key)
    try:
        return data.decode().strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{what} is not UTF-8 text", path=path, key=key) from None


def _checked(value: str, source: str, key: str, what: str) -> ApiKey:
    """An ApiKey of `value`, which must be non-empty printable ASCII without spaces."""
    if not value:
        raise ConfigError(f"{what} is empty", path=source, key=key)
    if not (value.isascii() and value.isprintable()) or " " in value:
        # a newline here would split the auth header; never echo the value
        raise ConfigError(
            f"{what} ({len(value)} chars) holds whitespace or control characters",
            path=source,
            key=key,
        )
    return ApiKey(value, source=source)
