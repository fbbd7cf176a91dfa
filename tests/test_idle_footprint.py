"""What a daemon keeps in memory for parts it does not use: no MCP bridge without a server,
no MQTT door or discovery without a broker, no chime before a timer rings (issue 24: RSS)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PARTS = ("pivox.skills.mcp", "pivox.control.mqtt", "pivox.control.discovery")
BUILD = (
    "import sys\n"
    "from pivox.config import load_config\n"
    "from pivox.daemon import Daemon, Hardware\n"
    "none = dict.fromkeys(('open_microphone', 'open_speaker', 'open_button', 'open_led'))\n"
    "daemon = Daemon(load_config(sys.argv[1], []), Hardware(**none))\n"
    f"print(*[m for m in {PARTS!r} if m in sys.modules], len(daemon.alarms.ringer.period))\n"
)


def loaded(tmp_path: Path, config: str) -> list[str]:
    """The optional parts' modules a freshly built daemon loaded, and its chime's length."""
    path = tmp_path / "pivox.toml"
    path.write_text('[server]\nurl = "ws://127.0.0.1:9/v1/realtime"\n' + config)
    result = subprocess.run([sys.executable, "-c", BUILD, str(path)], capture_output=True,
                            text=True, timeout=60, check=True)
    return result.stdout.split()


def test_an_unconfigured_part_is_not_loaded(tmp_path: Path) -> None:
    assert loaded(tmp_path, "") == ["0"]


def test_a_configured_mcp_server_loads_the_bridge(tmp_path: Path) -> None:
    assert loaded(tmp_path, '[[mcp.servers]]\nname = "home"\nurl = "http://127.0.0.1:9/mcp"\n'
                  'token_env = ""\n') == ["pivox.skills.mcp", "0"]
