"""pivox.secrets: where the API key comes from, which files are refused, and that it never shows."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import pytest

from pivox.config import McpServerSettings, ServerSettings
from pivox.core.errors import ConfigError
from pivox.host.logsafe import redact
from pivox.net.secrets import ApiKey, load_api_key, load_mcp_token

CRED_KEY = "sk-cred-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"
ENV_KEY = "sk-env-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHI"
FILE_KEY = "sk-file-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"


def key_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def sources(tmp_path: Path) -> tuple[ServerSettings, dict[str, str]]:
    """A server section and environment where all three sources hold a different key."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "openai_api_key").write_text(CRED_KEY + "\n")
    path = key_file(tmp_path / "key", f"  {FILE_KEY}\n\n")
    environ = {"CREDENTIALS_DIRECTORY": str(creds), "OPENAI_API_KEY": ENV_KEY}
    return ServerSettings(api_key_file=str(path)), environ


# --------------------------------------------------------------------------- sources, order


def test_the_systemd_credential_comes_first(sources: tuple[ServerSettings, dict[str, str]]) -> None:
    server, environ = sources
    key = load_api_key(server, environ=environ)
    assert key is not None
    assert key.reveal() == CRED_KEY
    assert key.source == os.path.join(environ["CREDENTIALS_DIRECTORY"], "openai_api_key")


def test_then_the_environment(sources: tuple[ServerSettings, dict[str, str]]) -> None:
    server, environ = sources
    del environ["CREDENTIALS_DIRECTORY"]
    key = load_api_key(server, environ=environ)
    assert key is not None
    assert (key.reveal(), key.source) == (ENV_KEY, "$OPENAI_API_KEY")


def test_then_the_key_file(sources: tuple[ServerSettings, dict[str, str]]) -> None:
    server, _ = sources
    key = load_api_key(server, environ={})
    assert key is not None
    assert (key.reveal(), key.source) == (FILE_KEY, server.api_key_file)


def test_a_credentials_directory_without_our_credential_falls_through(
    sources: tuple[ServerSettings, dict[str, str]],
) -> None:
    server, environ = sources
    server = ServerSettings(api_key_file=server.api_key_file, credential="other_name")
    key = load_api_key(server, environ=environ)
    assert key is not None and key.reveal() == ENV_KEY


def test_empty_names_switch_sources_off(sources: tuple[ServerSettings, dict[str, str]]) -> None:
    server, environ = sources
    only_file = ServerSettings(api_key_file=server.api_key_file, credential="", api_key_env="")
    key = load_api_key(only_file, environ=environ)
    assert key is not None and key.reveal() == FILE_KEY
    assert load_api_key(ServerSettings(credential="", api_key_env=""), environ=environ) is None


def test_the_configured_variable_name_is_read() -> None:
    server = ServerSettings(api_key_env="AZURE_OPENAI_API_KEY")
    environ = {"AZURE_OPENAI_API_KEY": f" {ENV_KEY} ", "OPENAI_API_KEY": "sk-wrong"}
    key = load_api_key(server, environ=environ)
    assert key is not None and key.reveal() == ENV_KEY


def test_a_blank_variable_counts_as_unset(tmp_path: Path) -> None:
    path = key_file(tmp_path / "key", FILE_KEY)
    key = load_api_key(ServerSettings(api_key_file=str(path)), environ={"OPENAI_API_KEY": "  "})
    assert key is not None and key.reveal() == FILE_KEY


def test_no_source_means_no_key() -> None:
    assert load_api_key(ServerSettings(), environ={}) is None


def test_the_default_environ_is_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setenv("PIVOX_TEST_KEY", ENV_KEY)
    key = load_api_key(ServerSettings(api_key_env="PIVOX_TEST_KEY"))
    assert key is not None and key.reveal() == ENV_KEY


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o444, 0o660])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path / "key", FILE_KEY, mode)
    with pytest.raises(ConfigError) as caught:
        load_api_key(ServerSettings(api_key_file=str(path)), environ={})
    assert str(caught.value) == (
        f"{path}: server.api_key_file: is readable by group/others (mode {mode:04o}); chmod 600 it"
    )


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700, 0o620, 0o602])
def test_a_private_key_file_is_read(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path / "key", FILE_KEY, mode)
    key = load_api_key(ServerSettings(api_key_file=str(path)), environ={})
    assert key is not None and key.reveal() == FILE_KEY


def test_a_missing_key_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    with pytest.raises(ConfigError) as caught:
        load_api_key(ServerSettings(api_key_file=str(path)), environ={})
    assert (caught.value.path, caught.value.key) == (str(path), "server.api_key_file")
    assert "No such file or directory" in caught.value.message


def test_a_directory_or_fifo_is_not_a_key_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    for path in (tmp_path, fifo):
        with pytest.raises(ConfigError) as caught:
            load_api_key(ServerSettings(api_key_file=str(path)), environ={})
        assert caught.value.message == "the API key file is not a regular file"


def test_an_oversized_key_file_is_refused_not_truncated(tmp_path: Path) -> None:
    path = key_file(tmp_path / "key", "k" * 5000)
    with pytest.raises(ConfigError) as caught:
        load_api_key(ServerSettings(api_key_file=str(path)), environ={})
    assert caught.value.message == "the API key file is over 4096 bytes"


def test_a_blank_credential_is_the_units_fallback_and_counts_as_none(
    sources: tuple[ServerSettings, dict[str, str]],
) -> None:
    server, environ = sources
    credential = Path(environ["CREDENTIALS_DIRECTORY"]) / "openai_api_key"
    credential.write_text(" \n")  # what `SetCredential=openai_api_key:\x20` leaves
    key = load_api_key(server, environ=environ)
    assert key is not None and key.reveal() == ENV_KEY


def test_an_empty_key_file_is_an_error(tmp_path: Path) -> None:
    path = key_file(tmp_path / "key", "\n")
    with pytest.raises(ConfigError) as caught:
        load_api_key(ServerSettings(api_key_file=str(path)), environ={})
    assert (caught.value.path, caught.value.key) == (str(path), "server.api_key_file")
    assert caught.value.message == "the API key is empty"


BROKEN = {
    "inner newline": f"{FILE_KEY}\nX-Injected: 1",
    "inner space": f"sk-abc {FILE_KEY}",
    "control character": f"{FILE_KEY}\x00",
    "non-ascii": f"{FILE_KEY}é",
}


@pytest.mark.parametrize("text", BROKEN.values(), ids=BROKEN.keys())
def test_a_key_that_would_break_the_header_is_refused_without_echo(
    tmp_path: Path, text: str
) -> None:
    path = key_file(tmp_path / "key", text)
    with pytest.raises(ConfigError) as caught:
        load_api_key(ServerSettings(api_key_file=str(path)), environ={})
    assert "whitespace or control characters" in caught.value.message
    assert FILE_KEY not in str(caught.value)
    assert FILE_KEY not in repr(caught.value)


def test_a_broken_environment_key_is_refused_without_echo() -> None:
    with pytest.raises(ConfigError) as caught:
        load_api_key(ServerSettings(), environ={"OPENAI_API_KEY": f"{ENV_KEY}\r\nX: y"})
    assert (caught.value.path, caught.value.key) == ("$OPENAI_API_KEY", "server.api_key_env")
    assert ENV_KEY not in str(caught.value)


def test_no_error_message_ever_contains_the_key(tmp_path: Path) -> None:
    secret = FILE_KEY
    cases = [
        key_file(tmp_path / "public", secret, 0o644),
        key_file(tmp_path / "spaced", f"{secret} {secret}"),
        key_file(tmp_path / "huge", secret * 100),
    ]
    for path in cases:
        with pytest.raises(ConfigError) as caught:
            load_api_key(ServerSettings(api_key_file=str(path)), environ={})
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value.args)


# --------------------------------------------------------------------------- ApiKey


def test_an_api_key_never_shows_itself(caplog: pytest.LogCaptureFixture) -> None:
    key = ApiKey(ENV_KEY, source="$OPENAI_API_KEY")
    shown = [
        repr(key),
        str(key),
        f"{key}",
        f"{key!r}",
        format(key, ""),
        repr([key]),
        repr({"k": key}),
    ]
    for text in shown:
        assert ENV_KEY not in text
        assert "sk-" not in text
    assert repr(key) == f"ApiKey(<{len(ENV_KEY)} chars from $OPENAI_API_KEY>)"
    with caplog.at_level(logging.INFO):
        logging.getLogger("pivox.test").info("using %s", key)
    assert ENV_KEY not in caplog.text
    assert key.reveal() == ENV_KEY


def test_an_api_key_is_not_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(ApiKey(ENV_KEY, source="test"))


def test_an_api_key_has_no_dict_to_leak_through() -> None:
    key = ApiKey(ENV_KEY, source="test")
    assert not hasattr(key, "__dict__")
    with pytest.raises(AttributeError):
        key.other = 1  # type: ignore[attr-defined]


def test_a_key_redacts_itself_from_every_log_line_once_made() -> None:
    key = "azure-style-key-without-a-prefix-0123456789"  # no pattern would find it
    assert redact(f"k={key}") == f"k={key}"
    ApiKey(key, source="test")
    text = f"GET /?k={key} x={key}"
    assert redact(text) == "GET /?k=[redacted] x=[redacted]"
    assert redact("nothing secret") == "nothing secret"


# --------------------------------------------------------------------------- MCP tokens

HA_TOKEN = "eyJhbGciOiJIUzI1NiJ9.mcp-token-0123456789abcdef.sig"


def test_an_mcp_token_follows_the_api_key_rules(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "ha_token").write_text(HA_TOKEN + "\n")
    server = McpServerSettings(name="home", url="https://ha/", token_credential="ha_token",
                               token_env="HA_TOKEN")
    token = load_mcp_token(server, 0, environ={"CREDENTIALS_DIRECTORY": str(creds),
                                               "HA_TOKEN": "other"})
    assert token is not None and token.reveal() == HA_TOKEN
    assert HA_TOKEN not in repr(token) and redact(f"sent {HA_TOKEN}") == "sent [redacted]"
    assert load_mcp_token(McpServerSettings(name="x", url="https://x/"), 0, environ={}) is None


def test_a_readable_mcp_token_file_names_its_entry(tmp_path: Path) -> None:
    path = key_file(tmp_path / "token", HA_TOKEN, mode=0o644)
    server = McpServerSettings(name="home", url="https://ha/", token_file=str(path))
    with pytest.raises(ConfigError) as caught:
        load_mcp_token(server, 2, environ={})
    assert caught.value.key == "mcp.servers[2].token_file"
    assert "chmod 600" in str(caught.value) and HA_TOKEN not in str(caught.value)
    empty = key_file(tmp_path / "empty", "\n")
    with pytest.raises(ConfigError, match="the token is empty"):
        load_mcp_token(McpServerSettings(name="h", url="https://h/", token_file=str(empty)), 0,
                       environ={})
