"""`pivox check` on MCP servers: each one's name, whether it answered and its tools; no token."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from pivox.cli.check import mcp_report
from pivox.config import load_config
from pivox.daemon import Daemon, Hardware
from tests.mcp_home import TOKEN, Knobs, free_port, home_in_thread, self_signed


def config_for(url: str, *extra: str) -> object:
    fields = ", ".join(['name = "home"', f'url = "{url}"', 'token_env = "PIVOX_TEST_HA_TOKEN"',
                        *extra])
    return load_config(None, [f"mcp.servers=[{{ {fields} }}]"])


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIVOX_TEST_HA_TOKEN", TOKEN)


def test_a_server_that_answers_and_its_tools() -> None:
    with home_in_thread(Knobs(get_time=True, page_size=2)) as home:
        report = mcp_report(config_for(home.url, 'tools = ["Hass*"]'))  # type: ignore[arg-type]
    assert report == [(True, f"MCP server home ({home.url}): answered: 5 tools, 3 offered")]


def test_a_refused_token_and_a_server_down_fail_without_showing_the_token(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with home_in_thread(Knobs(token="another")) as home:
        ((ok, line),) = mcp_report(config_for(home.url))  # type: ignore[arg-type]
    assert not ok and line.endswith("refused the token")
    url = f"http://127.0.0.1:{free_port()}/api/mcp"
    ((ok, line),) = mcp_report(config_for(url))  # type: ignore[arg-type]
    assert not ok and "cannot be reached" in line
    monkeypatch.setenv("PIVOX_TEST_HA_TOKEN", "bad token with spaces")
    ((ok, line),) = mcp_report(config_for(url))  # type: ignore[arg-type]
    assert not ok and "mcp.servers[0].token_env" in line and "spaces" not in line
    assert TOKEN not in line


def test_no_servers_no_lines() -> None:
    assert mcp_report(load_config(None)) == []


def test_a_missing_sdk_is_one_line_naming_the_extra(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "mcp.client", None)  # as if `mcp` were not installed
    config = config_for("http://127.0.0.1:9/api/mcp")
    ((ok, line),) = mcp_report(config)  # type: ignore[arg-type]
    assert not ok and "pivox[mcp]" in line
    hardware = Hardware(open_microphone=None, open_speaker=None,  # type: ignore[arg-type]
                        open_button=None, open_led=None)
    caplog.set_level(logging.INFO, "pivox")
    daemon = Daemon(config, hardware)  # type: ignore[arg-type]
    assert daemon.mcp is None  # it runs with its own tools
    (record,) = [r for r in caplog.records if r.name == "pivox.mcp" or "MCP" in r.getMessage()]
    assert record.levelno == logging.ERROR and "pivox[mcp]" in record.getMessage()
    assert "\n" not in record.getMessage()


def test_tls_is_verified_against_ca_file(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with home_in_thread(tls=(cert, key)) as home:
        ((ok, line),) = mcp_report(config_for(home.url))  # type: ignore[arg-type]
        assert not ok and "TLS certificate" in line and "not accepted" in line
        ((ok, line),) = mcp_report(config_for(home.url, f'ca_file = "{cert}"'))  # type: ignore[arg-type]
        assert ok and line.endswith("answered: 4 tools, 4 offered")
