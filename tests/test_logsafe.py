"""pivox.logsafe: no secret, bounded peer text, no flood and no raise in any log line.

The unit tests drive `SafeRecords` through real loggers and handlers; the debug-run tests
run `pivox run --set log.level=debug` as a real process against the bundled server on
loopback and grep everything it prints for the key.
"""

from __future__ import annotations

import io
import logging
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pivox.host.logsafe import (
    MAX_ARG_CHARS,
    MAX_FIELD_CHARS,
    RateLimiter,
    SafeRecords,
    register_secret,
)
from pivox.host.logsetup import JournalFieldHandler, PlainFormatter
from pivox.net.secrets import ApiKey

SECRET = "sk-live-SECRET0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def plain() -> Iterator[tuple[logging.Logger, io.StringIO, Clock]]:
    """A logger writing plain lines through SafeRecords to a string, with a fake clock."""
    clock = Clock()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(PlainFormatter())
    handler.addFilter(SafeRecords(RateLimiter(clock=clock)))
    logger = logging.getLogger(f"pivox.test.safe{id(out)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, out, clock
    logger.removeHandler(handler)


def test_websockets_header_lines_are_redacted_at_debug(
    plain: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, _ = plain
    logger.debug("> %s: %s", "Authorization", f"Bearer {SECRET}")
    logger.debug("> %s: %s", "api-key", "unregistered-azure-key-0000")
    logger.debug("< %s: %s", "set-cookie", "session=abc")
    text = out.getvalue()
    assert SECRET not in text and "unregistered-azure-key" not in text and "abc" not in text
    assert text.count("[redacted]") == 3


def test_a_registered_key_is_redacted_in_message_fields_and_traceback(
    plain: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, _ = plain
    key = "plainvalue-without-any-prefix-42"
    ApiKey(key, source="test")
    try:
        raise RuntimeError(f"handshake failed for {key}")
    except RuntimeError:
        logger.exception("failed %s", key, extra={"PIVOX_URL": f"wss://x/?key={key}"})
    text = out.getvalue()
    assert key not in text
    assert text.count("[redacted]") == 3, text


def test_the_journal_gets_redacted_bounded_fields() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    handler = JournalFieldHandler(send=lambda message, **fields: sent.append((message, fields)))
    handler.addFilter(SafeRecords())
    logger = logging.getLogger("pivox.test.safejournal")
    logger.propagate = False
    logger.addHandler(handler)
    register_secret(SECRET)
    try:
        logger.warning("server error: %s", f"bad key {SECRET}" + "x" * 2_000_000,
                       extra={"SESSION_ID": "s" * 1_000_000, "PIVOX_KEY": SECRET})
    finally:
        logger.removeHandler(handler)
    message, fields = sent[0]
    assert SECRET not in message and SECRET not in repr(fields)
    assert len(message) < MAX_ARG_CHARS + 100
    assert len(fields["SESSION_ID"]) < MAX_FIELD_CHARS + 30
    assert fields["PIVOX_KEY"] == "[redacted]"


def test_a_key_cut_by_the_length_limit_leaves_no_part_of_itself(
    plain: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, _ = plain
    key = "cut-key-0123456789abcdefghijklmnopqrstuvwxyz"
    ApiKey(key, source="test")
    logger.info("echo: %s", "x" * (MAX_ARG_CHARS - 10) + key)
    logger.info("echo: %s", "x", extra={"SESSION_ID": "y" * (MAX_FIELD_CHARS - 10) + key})
    assert key[:10] not in out.getvalue()


def test_megabyte_peer_strings_make_short_lines(
    plain: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, _ = plain
    logger.info("assistant: %s", "a" * (1 << 20), extra={"SESSION_ID": "s" * (1 << 20)})
    line = out.getvalue()
    assert len(line) < MAX_ARG_CHARS + MAX_FIELD_CHARS + 200
    assert f"[{1 << 20} chars]" in line


def test_a_peer_newline_cannot_forge_a_line(
    plain: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, _ = plain
    logger.info("user: %s", "hi\nERROR pivox.daemon: forged", extra={"ITEM_ID": "a\rb"})
    assert out.getvalue().count("\n") == 1
    assert "hi\\nERROR" in out.getvalue() and "a\\rb" in out.getvalue()


def test_a_deeply_nested_argument_never_raises(
    plain: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, _ = plain
    nested: Any = []
    for _ in range(1000):
        nested = [nested]
    logger.warning("response %s ended %s: %s", "resp_1", "failed", {"error": nested})
    logger.warning("and on %s", "the next line")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("WARNING") and "resp_1 ended failed" in lines[0]
    assert lines[1].endswith("and on the next line")


def test_a_flood_is_one_line_per_second_then_a_count(
    plain: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, clock = plain
    for i in range(30_000):  # one second of the malformed-event flood
        clock.now = i / 30_000
        logger.warning("skipped a malformed server event: %s", i)
    assert len(out.getvalue().splitlines()) == 10  # the burst
    clock.now = 1.5
    logger.warning("skipped a malformed server event: %s", "last")
    logger.warning("another template passes: %s", 1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 12
    assert "(29990 similar lines suppressed)" in lines[10]
    assert "PIVOX_SUPPRESSED=29990" in lines[10]
    assert "suppressed" not in lines[11]


def test_the_count_of_a_flood_that_stopped_rides_on_the_next_line(
    plain: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, clock = plain
    for _ in range(1000):  # a burst in 0.0 s, then silence
        logger.warning("skipped a malformed server event: %s", "x")
    clock.now = 5.0
    logger.info("idle -> listening (%s)", "ButtonDown")
    logger.info("listening -> thinking (%s)", "ButtonUp")
    lines = out.getvalue().splitlines()
    assert len(lines) == 12
    assert lines[10].endswith(f"(990 more lines of {logger.name} like 'skipped a malformed "
                              "server event: %s' suppressed)")
    assert "suppressed" not in lines[11]


def test_debug_lines_are_not_rate_limited(
    plain: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, _ = plain
    for i in range(100):
        logger.debug("frame %d", i)
    assert len(out.getvalue().splitlines()) == 100


def test_serve_out_of_file_descriptors_logs_a_line_per_second_then_a_count(
    tmp_path: Path,
) -> None:
    """`pivox serve` with 40 fds, 120 connections held: asyncio logs every failed accept."""
    log_path = tmp_path / "serve.log"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log_path.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "pivox", "serve", "--port", str(port)], stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40)),
        )
        clients: list[socket.socket] = []
        try:
            while "listening on" not in log_path.read_text():
                assert server.poll() is None, log_path.read_text()
                time.sleep(0.05)
            for _ in range(120):  # 40 fds, then the backlog of 100 (more would block)
                clients.append(socket.create_connection(("127.0.0.1", port)))
            time.sleep(3)  # the flood goes on while the connections wait in the backlog
        finally:
            for client in clients:
                client.close()
            server.terminate()
            server.wait(10)
    text = log_path.read_text()
    failures = text.count("socket.accept() out of system resource")
    print(f"out of fds for ~3 s: {failures} lines, {log_path.stat().st_size} bytes")
    assert 1 <= failures <= 10 + 5, text[-2000:]
    assert "similar lines suppressed" in text
