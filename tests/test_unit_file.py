"""systemd/pivox.service: `systemd-analyze verify` is clean and the security score is OK.

verify runs against a scratch root holding the host's system units, /bin/kill and a
stand-in for the installed `pivox` executable, because it checks that ExecStart exists.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "pivox.service"
MAX_EXPOSURE = 1.7

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def unit_settings(path: Path = UNIT) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file, in order, keyed by name (keys may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_verify_is_clean(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/bin").mkdir()
    shutil.copy2(shutil.which("kill") or "/usr/bin/kill", root / "usr/bin/kill")
    (root / "bin").symlink_to("usr/bin")
    exec_start = unit_settings()["ExecStart"][0].split()[0]
    stand_in = root / exec_start.lstrip("/")
    stand_in.parent.mkdir(parents=True)
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy2(UNIT, root / "etc/systemd/system/pivox.service")

    done = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "pivox.service"],
        capture_output=True,
        text=True,
        check=False,
    )
    # verify exits 0 on mere warnings (an unknown key), so its output must be empty too.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_security_exposure_is_ok() -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for pivox\.service: (\d+\.\d+) (\w+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match[1]) <= MAX_EXPOSURE, done.stdout
    assert match[2] == "OK"


def test_the_unit_keeps_what_the_issue_asks_for() -> None:
    s = unit_settings()
    assert s["Type"] == ["notify"]
    assert s["Restart"] == ["on-failure"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert 5 <= int(s["WatchdogSec"][0]) <= 30
    assert s["User"] == ["pivox"]
    assert set(s["SupplementaryGroups"][0].split()) == {"audio", "gpio"}
    assert s["LoadCredential"] == ["openai_api_key:/etc/pivox/api_key",
                                   "mqtt_password:/etc/pivox/mqtt_password"]
    assert s["SetCredential"] == ["openai_api_key:\\x20", "mqtt_password:\\x20"]
    assert s["RuntimeDirectory"] == ["pivox"] and s["RuntimeDirectoryMode"] == ["0750"]
    # reaching ALSA, GPIO and the network
    assert {"char-alsa rw", "/dev/gpiomem rw", "char-gpiochip rw"} <= set(s["DeviceAllow"])
    assert s.get("PrivateDevices", ["no"]) == ["no"]
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= set(s["RestrictAddressFamilies"][0].split())
    assert "PrivateNetwork" not in s and "IPAddressDeny" not in s


def test_installer_installs_the_venv_the_unit_runs() -> None:
    exec_start = unit_settings()["ExecStart"][0].split()
    installer = (ROOT / "install.sh").read_text()
    venv = re.search(r'^VENV="?([^"\n]+)"?$', installer, re.MULTILINE)
    config = re.search(r'^CONFIG_DIR="?([^"\n]+)"?$', installer, re.MULTILINE)
    assert venv and config
    assert exec_start[0] == f"{venv[1]}/bin/pivox"
    assert exec_start[1:] == ["run", "--config", f"{config[1]}/pivox.toml"]
