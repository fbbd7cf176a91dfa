"""A hostile server against a real `pivox run`: megabyte strings, floods, deep nesting, binary.

The server is plain websockets on loopback, written for the purpose; the daemon is a real
process on the private PulseAudio, logging plain lines to a file the test measures.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection, serve

from tests.pulse import PulseAudio

MIB = 1 << 20
FLOOD = 200


def event(type: str, **fields: Any) -> str:
    return orjson.dumps({"type": type, "event_id": "evt", **fields}).decode()


class Hostile:
    """One connection's script; records the handshakes and the tool outputs sent back."""

    def __init__(self) -> None:
        self.handshakes = 0
        self.tool_outputs: list[str] = []
        self.done = asyncio.Event()

    async def __call__(self, ws: ServerConnection) -> None:
        self.handshakes += 1
        await ws.send(event("session.created", session={"id": "s" * MIB}))
        part = {"response_id": "resp_1", "item_id": "item_1", "output_index": 0,
                "content_index": 0}
        for i in range(FLOOD):
            await ws.send(event("error", error={"type": "server_error", "code": "x",
                                                "message": f"{i} " + "m" * MIB}))
            await ws.send(event("response.output_audio_transcript.done", **part,
                                transcript="t" * MIB))
            await ws.send("{not json" + "j" * 1000)
            await ws.send(b'{"type":"error","error":{"type":"server_error","message":"bin"}}')
        call = {"response_id": "resp_1", "item_id": "item_2", "output_index": 1}
        await ws.send(event("response.function_call_arguments.done", **call, call_id="c1",
                            name="n" * MIB, arguments="{}"))
        arguments = '{"level": "' + "9" * 3 * MIB + '"}'  # 3 MiB: the link takes 4 MiB frames
        await ws.send(event("response.function_call_arguments.done", **call, call_id="c2",
                            name="set_volume", arguments=arguments))
        await ws.send('{"type":"response.done","response":{"id":"resp_1","status":"failed",'
                      f'"status_details":{{"error":{"[" * 1000}{"]" * 1000}}}}}}}')
        await asyncio.sleep(1.5)  # the rate limiter lets the next line through, with a count
        await ws.send(event("error", error={"type": "server_error", "code": "x",
                                            "message": "after the flood"}))
        async for frame in ws:
            message = orjson.loads(frame)
            if message["type"] == "conversation.item.create" and message["item"].get(
                    "type") == "function_call_output":
                self.tool_outputs.append(message["item"]["output"])
            if len(self.tool_outputs) == 2 and not self.done.is_set():
                await ws.send(event("session.created", session={"id": "sess_END"}))
                self.done.set()


async def run_daemon_against(script: Any, pulse: PulseAudio, tmp_path: Path,
                             done: asyncio.Event, marker: str) -> tuple[int, str]:
    """`pivox run` against a websockets server running `script` until `marker` is logged."""
    log_path = tmp_path / "pivox.log"
    async with serve(script, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        config = tmp_path / "pivox.toml"
        config.write_text(
            f'[server]\nurl = "ws://127.0.0.1:{port}/v1/realtime"\nmodel = ""\n'
            "reconnect_max_s = 1.0\n[button]\nenabled = false\n[led]\nenabled = false\n"
            '[log]\njournal = "off"\n'
        )
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pivox", "run", "--config", str(config)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **pulse.env, "OPENAI_API_KEY": "", "CREDENTIALS_DIRECTORY": ""},
            )
            try:
                await asyncio.wait_for(done.wait(), 60)
                deadline = asyncio.get_running_loop().time() + 20
                while marker not in log_path.read_text(errors="replace"):
                    assert asyncio.get_running_loop().time() < deadline, "marker never logged"
                    await asyncio.sleep(0.05)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    code = await asyncio.to_thread(proc.wait, 10)
                except subprocess.TimeoutExpired:
                    proc.kill()  # never leave a daemon behind; the test fails below
                    code = await asyncio.to_thread(proc.wait)
    return code, log_path.read_text(errors="replace")


async def test_a_hostile_server_gets_short_bounded_logs_and_no_reconnect(
    pulse: PulseAudio, tmp_path: Path
) -> None:
    hostile = Hostile()
    code, text = await run_daemon_against(hostile, pulse, tmp_path, hostile.done, "sess_END")
    size = len(text.encode())
    print(f"log for {FLOOD * 4 + 4} hostile events ({FLOOD * 2 + 5} MiB of strings): "
          f"{size} bytes, {len(text.splitlines())} lines")
    assert code == 0 and hostile.handshakes == 1, text[-3000:]
    assert "Traceback" not in text and "RecursionError" not in text
    assert size < 64 * 1024, text[-3000:]
    assert all(len(output) < 200 for output in hostile.tool_outputs), hostile.tool_outputs
    assert "similar lines suppressed" in text
    assert "refused a binary message" in text


async def test_a_deeply_nested_response_done_keeps_the_link(
    pulse: PulseAudio, tmp_path: Path
) -> None:
    handshakes = 0
    sent = asyncio.Event()

    async def script(ws: ServerConnection) -> None:
        nonlocal handshakes
        handshakes += 1
        await ws.send('{"type":"response.done","response":{"id":"resp_1","status":"failed",'
                      f'"status_details":{{"error":{"[" * 1000}{"]" * 1000}}}}}}}')
        await ws.send(event("session.created", session={"id": "sess_after_nested"}))
        sent.set()
        await ws.wait_closed()

    code, text = await run_daemon_against(script, pulse, tmp_path, sent, "sess_after_nested")
    assert code == 0 and handshakes == 1, text[-3000:]
    assert "response resp_1 ended failed" in text and "RecursionError" not in text
