"""Each optional library missing: one line naming it and the install command, no traceback.

Real `pivox` processes whose imports of the hidden modules fail as if they were not
installed (`sys.modules[name] = None` before pivox starts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pivox.host.optional import MissingDependency, require

HIDE_AND_RUN = (
    "import sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None\n"
    "from pivox.cli.main import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


def pivox_without(hidden: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`pivox ARGS` in a process where the modules named in `hidden` cannot be imported."""
    return subprocess.run(
        [sys.executable, "-c", HIDE_AND_RUN, hidden, *args], capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=60,
        env={**os.environ, "OPENAI_API_KEY": "", "CREDENTIALS_DIRECTORY": ""},
    )


def local_config(tmp_path: Path) -> str:
    path = tmp_path / "pivox.toml"
    path.write_text('[server]\nurl = "ws://127.0.0.1:9/v1/realtime"\n')
    return str(path)


def test_run_without_pyaudio_says_what_to_install(tmp_path: Path) -> None:
    result = pivox_without("pyaudio", "run", "--config", local_config(tmp_path),
                           "--set", "log.journal=off")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "PyAudio" in line]
    assert lines == ["pivox: PyAudio is not installed: pip install PyAudio (the "
                     "pivox[audio] extra), or apt install python3-pyaudio"]


def test_every_optional_piece_missing_is_one_line_each(tmp_path: Path) -> None:
    result = pivox_without("pyaudio,systemd,systemd.journal,RPi,RPi.GPIO", "run",
                           "--config", local_config(tmp_path), "--set", "log.journal=on")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    for package, install, users in (("systemd-python", "apt install python3-systemd", 1),
                                    ("RPi.GPIO", "apt install python3-rpi-lgpio", 2),
                                    ("PyAudio", "apt install python3-pyaudio", 1)):
        # one line per part that needed it (RPi.GPIO: the button and the LED)
        lines = [line for line in result.stderr.splitlines() if f"{package}" in line]
        assert len(lines) == users, (package, result.stderr)
        assert all("not installed" in line and install in line for line in lines)


def test_check_reports_missing_pieces_and_goes_on(tmp_path: Path) -> None:
    result = pivox_without("pyaudio,RPi,RPi.GPIO", "check", "--config", local_config(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "FAIL GPIO library: RPi.GPIO: not installed: pip install RPi.GPIO" in result.stdout
    assert "FAIL sound system: PyAudio is not installed" in result.stdout


def test_require_names_what_failed_to_load_inside_a_present_module(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    (tmp_path / "needs_lib.py").write_text("import not_there_either_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingDependency) as error:
        require("needs_lib", "needs-lib", "audio")
    assert "not_there_either_xyz" in str(error.value)
    assert require("json", "json", "none").dumps(1) == "1"
