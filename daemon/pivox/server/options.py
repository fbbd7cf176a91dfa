"""What the local realtime server is told at start: bind address, key, pacing, replies, faults."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pivox.server.faults import Fault
from pivox.server.voice import REPLY_KINDS


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """Options of `RealtimeServer`; each field but the three limits is a `pivox serve` flag.

    `speed` paces audio deltas at that many times real time (0: as fast as possible).
    `reply` is "speech" (espeak-ng, tones when missing), "tones" or "ramp" (see voice.py);
    `reply_ms` fixes the length of ramp and tones replies. `tool_call` names a tool the
    first response calls (with `tool_arguments`) when the session declares it. `faults`
    apply to every connection; `url_faults` lets a client add its own with `?fault=`.
    `record_bytes` bounds each connection's event records (bytes of the frames kept), and
    `records_total_bytes` all of them together (closed connections' records go first).
    """

    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str | None = None
    chunk_ms: int = 100
    speed: float = 4.0
    reply: str = "speech"
    reply_ms: int | None = None
    tool_call: str | None = None
    tool_arguments: str = "{}"
    faults: tuple[Fault, ...] = ()
    url_faults: bool = False
    record_bytes: int = 4 * 1024 * 1024
    records_total_bytes: int = 64 * 1024 * 1024
    max_frame_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        """Refuse options the server cannot honour, naming the field."""
        if self.reply not in REPLY_KINDS:
            raise ValueError(f"reply {self.reply!r}: expected one of {', '.join(REPLY_KINDS)}")
        if not (self.chunk_ms > 0 and 0 <= self.speed < math.inf
                and 0 < self.record_bytes <= self.records_total_bytes):
            raise ValueError("chunk_ms must be > 0, speed finite and >= 0, and "
                             "0 < record_bytes <= records_total_bytes")
        if self.reply_ms is not None and self.reply_ms <= 0:
            raise ValueError(f"reply_ms {self.reply_ms}: expected a positive number or None")
