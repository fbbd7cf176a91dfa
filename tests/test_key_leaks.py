"""The API key never leaves where it belongs: not into any log line, not to another host.

Real processes and real websockets on loopback: `pivox run --set log.level=debug` against
the bundled server, everything it prints grepped for the key; a redirecting server whose
target records the headers it was sent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures_server import StartServer
from tests.pulse import PulseAudio

SECRET = "sk-live-SECRET0123456789abcdef"


def _debug_run(url: str, tmp_path: Path, env: dict[str, str],
               *sets: str) -> subprocess.Popen[bytes]:
    config = tmp_path / "pivox.toml"
    config.write_text(
        f'[server]\nurl = "{url}"\nmodel = ""\nauth_retry_s = 10\n'
        "[button]\nenabled = false\n[led]\nenabled = false\n"
    )
    output = (tmp_path / "out.log").open("wb")
    argv = [sys.executable, "-m", "pivox", "run", "--config", str(config),
            "--set", "log.level=debug", "--set", "log.journal=off"]
    for override in sets:
        argv += ["--set", override]
    return subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env={**os.environ, **env})


async def _wait_for_text(path: Path, text: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while text not in path.read_text(errors="replace"):
        assert asyncio.get_running_loop().time() < deadline, path.read_text()[-3000:]
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("auth_style", "server_key", "wait_for"),
    [
        ("bearer", SECRET, "connected to"),
        ("api-key", SECRET, "connected to"),
        ("bearer", "sk-another-key-the-server-wants", "auth error"),
        ("api-key", "sk-another-key-the-server-wants", "auth error"),
    ],
)
async def test_a_debug_run_never_prints_the_key(
    start_realtime_server: StartServer, pulse: PulseAudio, tmp_path: Path,
    auth_style: str, server_key: str, wait_for: str,
) -> None:
    env = {**pulse.env, "OPENAI_API_KEY": SECRET, "CREDENTIALS_DIRECTORY": ""}
    async with start_realtime_server(api_key=server_key) as server:
        proc = _debug_run(server.url, tmp_path, env, f"server.auth_style={auth_style}")
        try:
            await _wait_for_text(tmp_path / "out.log", wait_for)
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 10)
    text = (tmp_path / "out.log").read_text(errors="replace")
    header = "Authorization" if auth_style == "bearer" else "api-key"
    assert SECRET not in text and SECRET[3:] not in text
    assert f"> {header}: [redacted]" in text  # websockets logged the header, redacted
