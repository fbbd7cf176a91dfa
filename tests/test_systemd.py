"""pivox.systemd and pivox.logsetup on the host: a real notify socket, real log records.

The notify peer is a real AF_UNIX datagram socket bound by the test, which is exactly what
systemd listens on; the journal side records what would go to `systemd.journal.send`
(the nspawn system test checks the same fields in a real journald).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pivox.host.logsetup import (
    JournalFieldHandler,
    PlainFormatter,
    setup_logging,
    stderr_is_journal,
)
from pivox.host.systemd import Notifier


class NotifyPeer:
    """The service manager's end of `$NOTIFY_SOCKET`: a bound datagram socket."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(5)

    def receive(self) -> str:
        return self.sock.recv(4096).decode()

    def pending(self) -> list[str]:
        self.sock.setblocking(False)
        try:
            messages = []
            while True:
                try:
                    messages.append(self.sock.recv(4096).decode())
                except BlockingIOError:
                    return messages
        finally:
            self.sock.settimeout(5)


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[tuple[NotifyPeer, dict[str, str]]]:
    address = str(tmp_path / "notify")
    p = NotifyPeer(address)
    yield p, {"NOTIFY_SOCKET": address}
    p.sock.close()


# --------------------------------------------------------------------------- Notifier


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.watchdog_interval() is None
    notifier.ready("idle")
    notifier.status("idle")
    notifier.reloading()
    notifier.stopping()
    notifier.watchdog_ping()


def test_ready_carries_the_first_status(peer: tuple[NotifyPeer, dict[str, str]]) -> None:
    p, env = peer
    notifier = Notifier(env)
    assert notifier.enabled
    notifier.ready("idle, connected to api.openai.com")
    assert p.receive() == "READY=1\nSTATUS=idle, connected to api.openai.com"


def test_status_is_kept_on_one_line(peer: tuple[NotifyPeer, dict[str, str]]) -> None:
    p, env = peer
    Notifier(env).status("auth error:\ncheck the API key\nREADY=1")
    assert p.receive() == "STATUS=auth error: check the API key READY=1"


def test_stopping(peer: tuple[NotifyPeer, dict[str, str]]) -> None:
    p, env = peer
    Notifier(env).stopping()
    assert p.receive() == "STOPPING=1"


def test_reloading_carries_the_monotonic_clock(peer: tuple[NotifyPeer, dict[str, str]]) -> None:
    p, env = peer
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier(env).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = p.receive().split("\n")
    assert first == "RELOADING=1"
    key, _, usec = second.partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(usec) <= after


def test_abstract_socket_address(tmp_path: Path) -> None:
    name = f"pivox-test-{os.getpid()}-{tmp_path.name}"
    p = NotifyPeer("\0" + name)
    try:
        Notifier({"NOTIFY_SOCKET": "@" + name}).status("offline")
        assert p.receive() == "STATUS=offline"
    finally:
        p.sock.close()


def test_watchdog_interval_is_half_of_watchdog_usec(
    peer: tuple[NotifyPeer, dict[str, str]],
) -> None:
    p, env = peer
    notifier = Notifier({**env, "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())})
    assert notifier.watchdog_interval() == 5.0
    notifier.watchdog_ping()
    assert p.receive() == "WATCHDOG=1"


def test_the_watchdog_is_pinged_once_per_interval_while_alive(
    peer: tuple[NotifyPeer, dict[str, str]],
) -> None:
    p, env = peer
    notifier = Notifier({**env, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())})
    alive = {"now": True}
    for now in (100.0, 100.5, 101.0, 102.0, 102.5):
        if now == 102.0:
            alive["now"] = False  # the audio died: no ping, asked again on the next tick
        notifier.watchdog(now, lambda _now: alive["now"])
        alive["now"] = True
    assert p.pending() == ["WATCHDOG=1"] * 3  # at 100.0, 101.0 and 102.5


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "ten"},
    ],
    ids=["unset", "other-pid", "zero", "garbage"],
)
def test_no_watchdog_pings_when_not_watched(
    peer: tuple[NotifyPeer, dict[str, str]], extra: dict[str, str]
) -> None:
    p, env = peer
    notifier = Notifier({**env, **extra})
    assert notifier.watchdog_interval() is None
    notifier.watchdog_ping()
    notifier.status("marker")
    assert p.pending() == ["STATUS=marker"]


def test_a_vanished_manager_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING, logger="pivox.systemd"):
        notifier.status("idle")
    assert "sd_notify" in caplog.text
    assert "gone" in caplog.text


def test_libsystemd_and_notifier_agree_on_the_wire(
    peer: tuple[NotifyPeer, dict[str, str]],
) -> None:
    """The reference sd_notify (systemd-python) sends the same datagram to the same socket."""
    pytest.importorskip("systemd.daemon")
    p, env = peer
    code = "import sys, systemd.daemon; systemd.daemon.notify('READY=1\\nSTATUS=idle')"
    subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, check=True)
    reference = p.receive()
    Notifier(env).ready("idle")
    assert p.receive() == reference


# --------------------------------------------------------------------------- logging


class RecordingSend:
    """Stands in for `systemd.journal.send`: records (MESSAGE, fields) per call."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, message: str, **fields: Any) -> None:
        self.entries.append((message, fields))


def _journal_logger(send: RecordingSend) -> logging.Logger:
    logger = logging.getLogger(f"pivox.test.journal{id(send)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(JournalFieldHandler(send))
    return logger


def test_journal_entry_carries_the_pivox_fields() -> None:
    send = RecordingSend()
    fields = {
        "PIVOX_STATE": "idle",
        "PIVOX_EVENT": "ButtonUp",
        "SESSION_ID": "sess_1",
        "RESPONSE_ID": "resp_1",
        "ITEM_ID": "item_1",
        "TURN_ID": 3,
        "PIVOX_LATENCY_MS": 412,
        "PIVOX_UNDERRUNS": 0,
    }
    _journal_logger(send).info("state %s -> %s", "thinking", "idle", extra=fields)
    [(message, sent)] = send.entries
    assert message == "state thinking -> idle"
    assert {k: sent[k] for k in fields} == {k: str(v) for k, v in fields.items()}
    assert sent["PRIORITY"] == "6"
    assert sent["SYSLOG_IDENTIFIER"] == "pivox"
    assert sent["LOGGER"].startswith("pivox.test.journal")
    assert sent["CODE_FUNC"] == "test_journal_entry_carries_the_pivox_fields"
    assert sent["CODE_FILE"] == __file__
    assert isinstance(sent["CODE_LINE"], int)


def test_journal_entry_sends_only_valid_field_names() -> None:
    send = RecordingSend()
    _journal_logger(send).warning(
        "x %s", 1, extra={"lower": "no", "_TRUSTED": "no", "MESSAGE": "no", "EMPTY": None}
    )
    [(message, sent)] = send.entries
    assert message == "x 1"
    assert all(key.isupper() and not key.startswith("_") for key in sent)
    assert "EMPTY" not in sent
    assert sent["PRIORITY"] == "4"


@pytest.mark.parametrize(
    ("level", "priority"),
    [
        (logging.DEBUG, "7"),
        (logging.INFO, "6"),
        (logging.WARNING, "4"),
        (logging.ERROR, "3"),
        (logging.CRITICAL, "2"),
    ],
)
def test_journal_priorities(level: int, priority: str) -> None:
    send = RecordingSend()
    _journal_logger(send).log(level, "m")
    assert send.entries[0][1]["PRIORITY"] == priority


def test_journal_message_includes_the_traceback() -> None:
    send = RecordingSend()
    logger = _journal_logger(send)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("audio thread died")
    message, sent = send.entries[0]
    assert message.startswith("audio thread died\nTraceback")
    assert "RuntimeError: boom" in message
    assert sent["PRIORITY"] == "3"


def _plain(msg: str, *args: object, **extra: object) -> str:
    record = logging.LogRecord("pivox.daemon", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return PlainFormatter().format(record)


def test_plain_line_appends_fields_readably() -> None:
    assert _plain("state %s", "idle", PIVOX_STATE="idle", PIVOX_EVENT="ButtonUp") == (
        "INFO pivox.daemon: state idle [PIVOX_STATE=idle PIVOX_EVENT=ButtonUp]"
    )
    assert _plain("hello") == "INFO pivox.daemon: hello"
    assert _plain("s", PIVOX_STATUS="reconnecting in 8 s") == (
        "INFO pivox.daemon: s [PIVOX_STATUS='reconnecting in 8 s']"
    )


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def test_setup_logging_plain_goes_to_stderr(
    root_logging: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open(tmp_path / "stderr", "w+") as stderr:
        monkeypatch.setattr(sys, "stderr", stderr)
        setup_logging("debug", journal="off")
        setup_logging("debug", journal="off")
        logging.getLogger("pivox.daemon").debug("up", extra={"PIVOX_STATE": "idle"})
        stderr.seek(0)
        assert stderr.read() == "DEBUG pivox.daemon: up [PIVOX_STATE=idle]\n"
    assert [h.get_name() for h in logging.getLogger().handlers].count("pivox") == 1


def test_setup_logging_auto_picks_the_journal_when_stderr_is_the_journal_stream(
    root_logging: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("systemd.journal")
    with open(tmp_path / "stderr", "w") as stderr:
        monkeypatch.setattr(sys, "stderr", stderr)
        st = os.fstat(stderr.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert stderr_is_journal()
        setup_logging("info")
        [ours] = [h for h in logging.getLogger().handlers if h.get_name() == "pivox"]
        assert isinstance(ours, JournalFieldHandler)
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert not stderr_is_journal()
        setup_logging("info")
        [ours] = [h for h in logging.getLogger().handlers if h.get_name() == "pivox"]
        assert isinstance(ours.formatter, PlainFormatter)


def test_stderr_is_journal_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert not stderr_is_journal()


def test_setup_logging_rejects_an_unknown_level() -> None:
    with pytest.raises(ValueError, match="loud"):
        setup_logging("loud")


def test_a_full_notify_queue_never_blocks(tmp_path: Path) -> None:
    """A manager that stops reading: messages are dropped, the caller is not blocked."""
    path = tmp_path / "notify"
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(path))
    try:
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
        pinger = threading.Thread(
            target=lambda: [notifier.watchdog_ping() for _ in range(1000)], daemon=True
        )  # far more pings than an AF_UNIX datagram queue holds
        pinger.start()
        pinger.join(timeout=30)
        assert not pinger.is_alive(), "a full notify queue blocked the sender"
        assert manager.recv(100) == b"WATCHDOG=1"
    finally:
        manager.close()
