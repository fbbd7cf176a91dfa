"""Where log records go: the journal with structured fields, or readable lines on stderr.

Daemon code logs fields as UPPERCASE `extra` keys, e.g.
`log.info("state %s -> %s", a, b, extra={"PIVOX_STATE": "idle", "PIVOX_EVENT": "ButtonUp"})`.
Under journald each such key becomes a journal field (next to MESSAGE, PRIORITY, CODE_*,
LOGGER, SYSLOG_IDENTIFIER=pivox); on a terminal it is appended as `[KEY=value ...]`.
Every handler made here carries `pivox.host.logsafe.SafeRecords`: secrets redacted, peer text
bounded, floods summarised, at every level and for every logger.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from pivox.host.logsafe import SafeRecords
from pivox.host.optional import MissingDependency, require

log = logging.getLogger("pivox.logsetup")

JournalMode = Literal["auto", "on", "off"]
JournalSend = Callable[..., Any]

# Journal field names: uppercase letters, digits and underscores, not starting with a digit
# or an underscore (fields with a leading underscore are trusted, set by journald only).
_FIELD = re.compile(r"[A-Z][A-Z0-9_]*\Z")
# syslog priorities of the logging levels, as systemd.journal.JournalHandler maps them.
_PRIORITY = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
_DEBUG_PRIORITY = 7


def record_fields(record: logging.LogRecord) -> Iterator[tuple[str, str]]:
    """The structured fields a record carries: its UPPERCASE attributes that are not None.

    MESSAGE is left out: it is always the formatted message itself.
    """
    for key, value in record.__dict__.items():
        if value is not None and _FIELD.match(key) and key != "MESSAGE":
            yield key, str(value)


class PlainFormatter(logging.Formatter):
    """`LEVEL logger: message [KEY=value ...]`, for a terminal or a plain log file."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = " ".join(f"{key}={_quoted(value)}" for key, value in record_fields(record))
        return f"{line} [{fields}]" if fields else line


class JournalFieldHandler(logging.Handler):
    """Sends each record to journald as one entry with its fields.

    Unlike `systemd.journal.JournalHandler` (235), which forwards every attribute of the
    record (`msg`, `args`, `levelname`, ...) as a would-be field, only valid field names
    are sent. `send` is `systemd.journal.send` unless a test passes its own.
    """

    def __init__(self, send: JournalSend | None = None, identifier: str = "pivox") -> None:
        super().__init__()
        if send is None:
            send = require("systemd.journal", "systemd-python", "systemd",
                           apt="python3-systemd").send
        self._send = send
        self._identifier = identifier
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Send `record`; its own fields cannot override the ones set here."""
        try:
            fields = dict(record_fields(record))
            fields.update(
                PRIORITY=str(_priority(record.levelno)),
                SYSLOG_IDENTIFIER=self._identifier,
                LOGGER=record.name,
                THREAD_NAME=record.threadName or "",
                CODE_FILE=record.pathname,
                CODE_LINE=record.lineno,
                CODE_FUNC=record.funcName,
            )
            self._send(self.format(record), **fields)
        except Exception:
            self.handleError(record)


def setup_logging(level: str = "info", journal: JournalMode = "auto") -> None:
    """Configure the root logger once per call; safe to call again (e.g. on reload).

    `journal="auto"` uses journald when stderr is the journal stream systemd connected
    (`$JOURNAL_STREAM` names stderr's device and inode); "on"/"off" force the choice.
    Raises ValueError for an unknown level name.
    """
    levelno = logging.getLevelNamesMapping().get(level.upper())
    if levelno is None:
        raise ValueError(f"unknown log level {level!r}, expected debug, info, warning or error")
    use_journal = journal == "on" or (journal == "auto" and stderr_is_journal())
    journal_handler = _journal_handler() if use_journal else None
    handler: logging.Handler
    if isinstance(journal_handler, JournalFieldHandler):
        handler = journal_handler
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(PlainFormatter())
    handler.set_name("pivox")
    handler.addFilter(SafeRecords())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "pivox"]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(levelno)
    if isinstance(journal_handler, MissingDependency):
        log.warning("%s; logging plain lines to stderr", journal_handler)


def _journal_handler() -> JournalFieldHandler | MissingDependency:
    try:
        return JournalFieldHandler()
    except MissingDependency as exc:
        return exc


def stderr_is_journal(environ: Mapping[str, str] = os.environ) -> bool:
    """True when `$JOURNAL_STREAM` (`dev:inode`) is the file open on stderr."""
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        stat = os.fstat(sys.stderr.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):
        return False


def _priority(levelno: int) -> int:
    return next((pri for floor, pri in _PRIORITY if levelno >= floor), _DEBUG_PRIORITY)


def _quoted(value: str) -> str:
    return value if value and not any(c.isspace() or c in '"[]' for c in value) else repr(value)
