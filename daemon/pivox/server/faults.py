"""Fault injection for the local realtime server, set per connection.

A fault is written `kind[:arg][:key=value]...`; several are separated by commas or given as
repeated `fault=` query parameters, e.g.
`ws://127.0.0.1:8765/v1/realtime?model=x&fault=close:1011:after=40`.

| kind | arg | effect when it fires |
|---|---|---|
| `close` | close code (1011) | close the WebSocket with that code (1000, 1008, 1011, ...) |
| `drop` | - | abort the TCP connection: no close frame |
| `stall` | seconds (1.0) | send nothing for that long (client events are still read) |
| `malformed` | - | send one text frame that is not JSON |
| `bad_base64` | - | send one audio delta whose `delta` is not base64 |
| `unknown` | - | send one event of a type no client knows |
| `oversized` | bytes (2000000) | send one valid JSON event of that many bytes |
| `stale` | count (3) | on `response.cancel`, `count` more audio deltas of that response |
| `auth` | - | accept, then send `error` code `invalid_api_key` and close 1008 |
| `error` | error class (server_error) | send one `error` event of that class (see ERROR_CLASSES) |
| `freeze` | seconds (1.0) | the link goes dead: nothing read or sent, pings unanswered |

Values are bounded (`LIMITS`: NaN, infinity, more than an hour or 64 MiB are refused) and a
close code must be one an endpoint may send. Faults from the URL apply only when the server
was started with `url_faults` (`pivox serve --url-faults`); otherwise such a URL is refused.

`stall` keeps the WebSocket layer alive (pings are answered); `freeze` imitates a dead link,
which only the client's keep-alive can notice, then the server gives up on the connection.
`stale` imitates deltas in flight when a cancel arrives: they come before `response.done`.
Every fault but `stale` fires once, as soon as the server has sent `after=N` events (0:
before `session.created`) and `deltas=N` audio deltas on the connection (both default 0),
so `drop:deltas=3` drops the connection mid-response after the third audio delta.
`FaultPlan` is the pure per-connection bookkeeping; the websockets layer acts on what fires.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs

FaultKind = Literal[
    "close", "drop", "stall", "malformed", "bad_base64", "unknown", "oversized", "stale", "auth",
    "error", "freeze",
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "close", "drop", "stall", "malformed", "bad_base64", "unknown", "oversized", "stale", "auth",
    "error", "freeze",
)
ERROR_CLASSES: dict[str, tuple[str, str | None, str]] = {
    "invalid_request_error": (
        "invalid_request_error", "invalid_value", "Invalid value: 'x'. Supported values are: 'y'."
    ),
    "server_error": (
        "server_error", None, "The server had an error while processing your request."
    ),
    "rate_limit": (
        "requests", "rate_limit_exceeded",
        "Rate limit reached for gpt-realtime on requests per min (RPM). Please try again in 1s.",
    ),
}
"""`error` fault argument -> the wire error's (type, code, message), shaped like the cloud's."""
# the field the positional argument of each kind sets
_POSITIONAL: dict[str, str] = {
    "close": "code", "stall": "seconds", "oversized": "size", "stale": "count",
    "error": "error", "freeze": "seconds",
}
_INT_FIELDS = ("after", "deltas", "code", "size", "count")
_KEYS = ("after", "deltas", "code", "seconds", "size", "count", "error")
# field -> (largest value, what it is): a fault spec comes from a URL, so it is bounded
LIMITS: dict[str, tuple[float, str]] = {
    "after": (1e9, "events"), "deltas": (1e9, "deltas"), "seconds": (3600.0, "seconds"),
    "size": (64 * 1024 * 1024, "bytes"), "count": (10_000, "deltas"),
}
# close codes an endpoint may send (RFC 6455 section 7.4: 1004-1006 and 1015 are reserved)
CLOSE_CODES = (*range(1000, 1004), *range(1007, 1015), *range(3000, 5000))


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One misbehaviour of the server on one connection; see the module docstring."""

    kind: FaultKind
    after: int = 0
    deltas: int = 0
    code: int = 1011
    seconds: float = 1.0
    size: int = 2_000_000
    count: int = 3
    error: str = "server_error"

    def __post_init__(self) -> None:
        """Refuse values the server cannot act on: NaN, infinity, huge sizes, bad codes."""
        for name, (top, unit) in LIMITS.items():
            value = getattr(self, name)
            if not 0 <= value <= top:  # NaN fails both comparisons
                raise ValueError(f"fault {self.kind}: {name} {value!r}: expected 0 to "
                                 f"{top:.0f} {unit}")
        if self.code not in CLOSE_CODES:
            raise ValueError(f"fault {self.kind}: close code {self.code}: expected 1000-1003, "
                             "1007-1014 or 3000-4999")
        if self.error not in ERROR_CLASSES:
            raise ValueError(f"fault {self.kind}: error class {self.error!r}: expected one of "
                             f"{', '.join(ERROR_CLASSES)}")


def parse_fault(text: str) -> Fault:
    """Parse `kind[:arg][:key=value]...`; raises ValueError naming what was expected."""
    kind, *parts = text.strip().split(":")
    if kind not in FAULT_KINDS:
        raise ValueError(f"fault kind {kind!r}: expected one of {', '.join(FAULT_KINDS)}")
    fields: dict[str, str] = {}
    for index, part in enumerate(parts):
        key, sep, value = part.partition("=")
        if not sep:
            if index != 0 or kind not in _POSITIONAL:
                raise ValueError(f"fault {text!r}: unexpected argument {part!r}")
            key, value = _POSITIONAL[kind], part
        if key not in _KEYS:
            raise ValueError(f"fault {text!r}: unknown key {key!r}")
        fields[key] = value
    error = fields.pop("error", "server_error")
    try:
        numbers: dict[str, int | float] = {
            key: int(value) if key in _INT_FIELDS else float(value)
            for key, value in fields.items()
        }
    except ValueError:
        raise ValueError(f"fault {text!r}: expected numbers as values") from None
    try:
        return Fault(kind=kind, error=error, **numbers)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"{exc} (in {text!r})") from None


def faults_from_query(query: str) -> tuple[Fault, ...]:
    """Every fault named by `fault=` parameters of a URL query string; other keys are ignored."""
    specs = parse_qs(query).get("fault", [])
    return tuple(parse_fault(spec) for value in specs for spec in value.split(",") if spec)


class FaultPlan:
    """Counts what a connection sent and says which faults fire; each fires at most once."""

    def __init__(self, faults: Iterable[Fault]) -> None:
        faults = tuple(faults)
        self.stale_count = sum(f.count for f in faults if f.kind == "stale")
        self._pending = [f for f in faults if f.kind != "stale"]
        self.sent = 0
        self.deltas = 0

    def note_sent(self, *, is_audio_delta: bool) -> None:
        """Record one event sent to the client."""
        self.sent += 1
        self.deltas += is_audio_delta

    def due(self) -> list[Fault]:
        """The faults whose counts are reached now; they are removed from the plan."""
        fired = [f for f in self._pending if self.sent >= f.after and self.deltas >= f.deltas]
        self._pending = [f for f in self._pending if f not in fired]
        return fired
