"""A real `pivox run` on PulseAudio prints none of PortAudio's JACK probing to stderr.

Debian's libportaudio2 links libjack; every PortAudio start probes for a JACK server and
libjack prints its failure on stderr, which under systemd lands in the journal as
unstructured lines, at start and at every device reopen.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.daemon_harness import start_pivox_run, wait_for_text
from tests.fixtures_server import StartServer
from tests.pulse import PulseAudio

JACK_LINES = (
    "Cannot connect to server socket",
    "Cannot connect to server request channel",
    "jack server is not running or cannot be started",
    "JackShmReadWritePtr",
)


async def test_pivox_run_prints_no_jack_lines(
    start_realtime_server: StartServer, pulse: PulseAudio, tmp_path: Path
) -> None:
    env = {**pulse.env, "OPENAI_API_KEY": "sk-quiet-test", "CREDENTIALS_DIRECTORY": ""}
    async with start_realtime_server(api_key="sk-quiet-test") as server:
        proc = start_pivox_run(server.url, tmp_path, env)
        try:
            await wait_for_text(tmp_path / "out.log", "connected to")
            await wait_for_text(tmp_path / "out.log", "opened:")  # PortAudio started
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 10) == 0
    text = (tmp_path / "out.log").read_text(errors="replace")
    assert "opened:" in text, text[-3000:]
    assert not [line for line in text.splitlines() if any(j in line for j in JACK_LINES)], text
