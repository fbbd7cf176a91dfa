"""What makes a log record safe to write: no secret, bounded peer text, no flood, no raise.

`SafeRecords` is a `logging.Filter` that `logsetup` puts on every handler it creates, so it
applies to every logger (websockets' own debug lines included) and every level:

- secrets: every registered secret (each `ApiKey` registers itself) and the value of any
  credential header (`Authorization`, `api-key`, `Cookie`, ...) or `Bearer` token become
  `[redacted]`, in the message, the structured fields and the traceback;
- size: each argument of the message is cut to `MAX_ARG_CHARS`, each structured field to
  `MAX_FIELD_CHARS`, the message to `MAX_MESSAGE_CHARS` and a traceback to
  `MAX_TRACEBACK_CHARS`; control characters in arguments and fields are escaped, so a peer
  cannot forge a line;
- floods: records of one logger, level and message template (the first `TEMPLATE_CHARS`
  of its first line; INFO and above) pass in a burst of
  `BURST`, then one per `1 / RATE_PER_S` seconds; the next one that passes says how many
  were suppressed (`PIVOX_SUPPRESSED` field), and when a flood ends before one passes,
  the next line of any kind carries its count;
- no raise: building the message never raises (a 1000-deep list is shown bounded by
  `reprlib`); whatever fails is replaced by a note naming the type.
"""

from __future__ import annotations

import logging
import re
import reprlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

REDACTED = "[redacted]"
MAX_ARG_CHARS = 1000
MAX_FIELD_CHARS = 200
MAX_MESSAGE_CHARS = 4000
MAX_TRACEBACK_CHARS = 8000
MAX_SECRET_CHARS = 4096
"""Longest secret redaction looks for (an API key file holds at most 4096 bytes)."""
BURST = 10
RATE_PER_S = 1.0
TEMPLATE_CHARS = 60
MAX_TRACKED = 512
"""Message templates whose rate is tracked at once; the least recent is forgotten first."""

_secrets: set[str] = set()
# header name, separator, value up to the end of the line (websockets logs "> name: value")
_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|api-key|x-api-key|openai-api-key|cookie"
    r"|set-cookie|x-goog-api-key)(\s*[:=]\s*)[^\r\n]+"
)
_TOKEN = re.compile(r"(?i)\b(bearer\s+)\S+|\bsk-[A-Za-z0-9_-]{8,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FIELD = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_repr = reprlib.Repr()  # Python 3.11 takes no keyword arguments here
_repr.maxlevel, _repr.maxstring, _repr.maxother = 3, MAX_ARG_CHARS, MAX_ARG_CHARS


def register_secret(value: str) -> None:
    """Redact `value` from every later log record (a key of 4+ characters)."""
    if len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    """`text` with every registered secret, credential header value and token redacted."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _HEADER.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    return _TOKEN.sub(lambda m: f"{m[1]}{REDACTED}" if m[1] else REDACTED, text)


def clip(text: str, limit: int, length: int | None = None) -> str:
    """`text` cut to `limit` characters with a note of its `length` (default: its own);
    control characters escaped."""
    length = len(text) if length is None else length
    if max(length, len(text)) > limit:
        text = f"{text[:limit]}...[{length} chars]"
    return _CONTROL.sub(lambda m: repr(m[0])[1:-1], text)


def redacted_head(text: str, limit: int) -> str:
    """The first `limit` characters of `text`, redacted, noting the length of the whole.

    Redaction runs before the cut (a key across it leaves no part of itself) but only over
    the head and one key's length more, so a 1 MiB string costs what a short one does.
    """
    return clip(redact(text[: limit + MAX_SECRET_CHARS]), limit, len(text))


def redacted_tail(text: str, limit: int) -> str:
    """The last `limit` characters of a traceback (where the error is), redacted likewise."""
    tail = redact(text[-(limit + MAX_SECRET_CHARS):])
    if len(text) <= limit and len(tail) <= limit:
        return tail
    return f"[...{len(text) - limit} chars]\n{tail[-limit:]}"


def shown(value: Any, limit: int = MAX_ARG_CHARS) -> Any:
    """A log argument made bounded: numbers stay numbers, anything else a clipped string."""
    if value is None or isinstance(value, int | float):
        return value
    try:
        if isinstance(value, str):
            text = value
        elif isinstance(value, bytes | bytearray | memoryview):
            text = f"<{len(value)} bytes>"
        elif isinstance(value, list | tuple | dict | set | frozenset):
            text = _repr.repr(value)
        else:
            text = str(value)
    except Exception:  # RecursionError, a __str__ that raises, ...
        text = f"<unprintable {type(value).__name__}>"
    return redacted_head(text, limit)


Key = tuple[str, str, int]
"""What makes log records similar: logger name, template start, level."""


class RateLimiter:
    """A token bucket per key: `BURST` at once, then `RATE_PER_S`; counts what it refuses."""

    def __init__(self, burst: int = BURST, rate_per_s: float = RATE_PER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._burst = burst
        self._rate = rate_per_s
        self._clock = clock
        self._buckets: OrderedDict[Key, list[float]] = OrderedDict()
        self._pending: dict[Key, float] = {}  # key -> when it last had a line suppressed

    def allow(self, key: Key) -> int | None:
        """None when `key` is over its rate (counted), else how many were suppressed before."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [float(self._burst), now, 0.0]
            if len(self._buckets) > MAX_TRACKED:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            bucket[2] += 1
            self._pending[key] = now
            return None
        suppressed = int(bucket[2])
        bucket[0], bucket[2] = tokens - 1, 0.0
        self._pending.pop(key, None)
        return suppressed

    def settled(self) -> list[tuple[Key, int]]:
        """Keys whose flood ended (nothing suppressed for `1 / RATE_PER_S` s) with their
        uncounted suppressions; each is reported once, so a flood's count is never lost."""
        now = self._clock()
        done = [key for key, at in self._pending.items() if now - at >= 1 / self._rate]
        counts = []
        for key in done:
            del self._pending[key]
            bucket = self._buckets.get(key)
            if bucket is not None and bucket[2]:
                counts.append((key, int(bucket[2])))
                bucket[2] = 0.0
        return counts


class SafeRecords(logging.Filter):
    """Redacts, bounds and rate-limits each record in place; see the module docstring."""

    def __init__(self, limiter: RateLimiter | None = None) -> None:
        super().__init__()
        self._limiter = limiter or RateLimiter()
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_pivox_safe", False):
            return True  # a second handler sees the record already made safe
        suppressed = 0
        if record.levelno > logging.DEBUG:
            allowed = self._limiter.allow((record.name, _template(record.msg), record.levelno))
            if allowed is None:
                return False
            suppressed = allowed
        try:
            self._make_safe(record, suppressed)
        except Exception as exc:  # never let a record take its caller down
            record.msg, record.args = f"<unloggable record: {type(exc).__name__}>", None
            record.exc_info = record.exc_text = None
        record._pivox_safe = True
        return True

    def _make_safe(self, record: logging.LogRecord, suppressed: int) -> None:
        message = clip_message(_message(record))
        if suppressed:
            message += f" ({suppressed} similar lines suppressed)"
            record.PIVOX_SUPPRESSED = suppressed
        for (name, template, _), count in self._limiter.settled():
            message += f" ({count} more lines of {name} like {template!r} suppressed)"
        record.msg, record.args = message, None
        for key, value in list(record.__dict__.items()):
            if _FIELD.match(key) and value is not None and not isinstance(value, int | float):
                setattr(record, key, shown(value, MAX_FIELD_CHARS))
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redacted_tail(record.exc_text, MAX_TRACEBACK_CHARS)
            record.exc_info = None  # exc_text is what formatters and handlers print
        if record.stack_info:
            record.stack_info = redacted_tail(record.stack_info, MAX_TRACEBACK_CHARS)


def clip_message(message: str) -> str:
    """A whole message redacted and cut to `MAX_MESSAGE_CHARS` (its own newlines kept)."""
    head = redact(message[: MAX_MESSAGE_CHARS + MAX_SECRET_CHARS])
    if max(len(message), len(head)) <= MAX_MESSAGE_CHARS:
        return head
    return f"{head[:MAX_MESSAGE_CHARS]}...[{len(message)} chars]"


def _template(msg: object) -> str:
    """What makes records "similar": the start of the template's first line (asyncio puts a
    handle's varying repr on later lines of its pre-formatted messages)."""
    text = msg if isinstance(msg, str) else type(msg).__name__
    return text[:TEMPLATE_CHARS].partition("\n")[0]


def _message(record: logging.LogRecord) -> str:
    """`msg % args` with each argument bounded first; never raises."""
    template = record.msg if isinstance(record.msg, str) else shown(record.msg)
    args = record.args
    if not args:
        return str(template)
    safe: Any
    if isinstance(args, Mapping):
        safe = {key: shown(value) for key, value in args.items()}
    else:
        safe = tuple(shown(value) for value in args)
    try:
        return str(str(template) % safe)
    except Exception:  # a template that does not fit its arguments
        return f"{shown(template)} {safe!r}"
