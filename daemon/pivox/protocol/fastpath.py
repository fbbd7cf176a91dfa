"""The audio-delta fast path: raw frame bytes to PCM in the AudioRing without a str or a dict.

Output audio is nearly all of what the server sends (`response.output_audio.delta` in GA,
`response.audio.delta` in beta). For a frame laid out the way the server writes it - compact
JSON, `type` and `event_id` first (either order), then `response_id`, `item_id`,
`output_index`, `content_index`, and `delta` last - `parse_audio_delta` reads `type` and
`event_id` with an anchored regex, compares the bytes after them with the last delta's (the
deltas of one item repeat them; a second regex reads them when they change), and returns an
`AudioChunk` holding the frame and where its base64 span starts: nothing of the payload is
copied.

`parse_audio_delta` reads the head only: the span runs from the head to the frame's closing
`"}` and is not scanned, so it may hold a quote (a key after `delta`, whose value may differ
from the head's). The caller then either drops the chunk - a delta of a cancelled response,
never decoded, once `chunk.is_plain()` shows the header is the event's - or calls
`decode_into_ring` (or `decode_audio`), which base64-decodes the span. Strict base64 has no
quote, so a span that decodes is the whole `delta` string. `decode_into_ring` decodes a large
span straight into the ring's free bytes through `pivox.protocol.base64_into`, so the decode
is the only copy of the audio; a small span (`IN_PLACE_MIN_B64`), a platform without that
module, or free bytes that wrap around the ring's end get pybase64 and one copy into the ring
(both measured in bench/decode.py).

`parse_audio_delta` returns None for anything else - other key orders, whitespace, escapes or
non-ASCII in the small fields, repeated keys before `delta`, a frame over the decoder's size
limit - and the caller uses `pivox.protocol.openai.decode_server_event`. So does it when
`decode_audio` returns None: the span is not strict base64 (a quote, escapes such as `\\/`,
bad characters, bad padding) or decodes to an odd number of bytes. Either way the event or
the ProtocolError is always exactly the full decoder's.
"""

from __future__ import annotations

import binascii
import re
from typing import NamedTuple

import pybase64

from pivox.core.events import ItemId, ResponseId
from pivox.core.ring import AudioRing
from pivox.protocol.base64_into import decode_span_into, max_decoded_size
from pivox.protocol.openai import MAX_FRAME_BYTES

__all__ = ["AudioChunk", "decode_audio", "decode_into_ring", "parse_audio_delta"]

_ID = rb'"([\x20\x21\x23-\x5b\x5d-\x7e]+)"'  # printable ASCII but for the quote and backslash
_INT = rb"(0|[1-9][0-9]{0,17})"  # up to 18 digits: always an int64 to orjson
_HEAD = re.compile(  # up to the fields consecutive deltas of one item repeat
    rb'\{(?:"event_id":' + _ID + rb",)?"
    rb'"type":"response\.(?:output_)?audio\.delta",'
    rb'(?:"event_id":' + _ID + rb",)?"
)
_IDS = re.compile(
    rb'"response_id":' + _ID + rb',"item_id":' + _ID
    + rb',"output_index":' + _INT + rb',"content_index":' + _INT + rb',"delta":"'
)
_EMPTY = memoryview(b"")
IN_PLACE_MIN_B64 = 32_000
"""Spans shorter than this (24 KB of PCM) are decoded by pybase64 and copied: below it the
ctypes call costs more than the copy it saves (crossover ~26 KB, bench/decode.py)."""


class AudioChunk(NamedTuple):
    """An audio delta read from a raw frame, its PCM not yet decoded.

    The base64 span is `frame[start:end]` (OpenAI: `end` is `len(frame) - 2`; Gemini's
    `pivox.protocol.gemini_fastpath` makes chunks too, its span deeper in the JSON). A named
    tuple, not a frozen dataclass: it is built once per frame on the hot path, and a tuple is
    built three times faster.
    """

    event_id: str | None
    response_id: ResponseId
    item_id: ItemId
    output_index: int
    content_index: int
    frame: bytes
    start: int
    end: int

    @property
    def b64(self) -> memoryview:
        """The base64 span, a view into the frame."""
        return memoryview(self.frame)[self.start : self.end]

    @property
    def size(self) -> int:
        """The PCM length the span decodes to if it is valid base64."""
        frame, end = self.frame, self.end
        # "=" padding can only be the span's last two bytes (the head ends in `:"`).
        return (end - self.start) // 4 * 3 - frame.count(b"=", end - 2, end)

    def is_plain(self) -> bool:
        """Whether the span holds no quote, so the frame is this header, the span and its tail
        (the header is the event's): one scan of the span, for a chunk a fast path made.
        """
        return self.frame.find(b'"', self.start) == self.end


_new_chunk = tuple.__new__  # AudioChunk's own __new__ is a Python function: 2x slower
_last_ids: tuple[bytes, tuple[ResponseId, ItemId, int, int]] | None = None  # (text, values)


def parse_audio_delta(frame: bytes) -> AudioChunk | None:
    """The chunk of an audio-delta frame (bytes, as websockets delivers it) in the server's own
    layout, else None (use the full decoder)."""
    global _last_ids
    if type(frame) is not bytes or len(frame) > MAX_FRAME_BYTES or not frame.endswith(b'"}'):
        return None
    head = _HEAD.match(frame)
    if head is None:
        return None
    first_event_id, second_event_id = head.groups()
    if first_event_id is None:
        event_id = None if second_event_id is None else second_event_id.decode()
    elif second_event_id is None:
        event_id = first_event_id.decode()
    else:
        return None  # a repeated key: leave it to the full decoder
    at = head.end()
    last = _last_ids
    if last is not None and frame.startswith(last[0], at):  # the item of the last delta
        ids = last[1]
        start = at + len(last[0])
    else:
        match = _IDS.match(frame, at)
        if match is None:
            return None
        response_id, item_id, output_index, content_index = match.groups()
        ids = (
            ResponseId(response_id.decode()),
            ItemId(item_id.decode()),
            int(output_index),
            int(content_index),
        )
        start = match.end()
        _last_ids = (frame[at:start], ids)
    if start > len(frame) - 2:
        return None  # the head's opening quote is the frame's last one: `"delta":"}`
    return _new_chunk(AudioChunk, (event_id, *ids, frame, start, len(frame) - 2))


def decode_audio(chunk: AudioChunk) -> bytes | None:
    """The PCM of `chunk`, or None: the frame is not plain base64 of 16-bit PCM after all (a
    quote, an escape, bad padding, an odd length) and only the full decoder may read it."""
    try:
        pcm = pybase64.b64decode(chunk.b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    return None if len(pcm) % 2 else pcm


def decode_into_ring(chunk: AudioChunk, ring: AudioRing) -> memoryview | None:
    """Decode `chunk` and write as much PCM as fits into `ring` under its item.

    Returns the PCM that did not fit (empty when all did): the caller waits for space and
    writes it with `ring.write(rest, chunk.item_id)`, never decoding again. None as for
    `decode_audio`: nothing was written, the frame goes to the full decoder.
    """
    frame, start = chunk.frame, chunk.start
    length = chunk.end - start
    if decode_span_into is not None and length >= IN_PLACE_MIN_B64:
        offset, room = ring.tail_room()
        if room >= max_decoded_size(length):
            size = decode_span_into(frame, start, length, ring.address + offset)
            if size < 0 or size % 2:
                return None
            ring.commit(size, chunk.item_id)
            return _EMPTY
    pcm = decode_audio(chunk)
    if pcm is None:
        return None
    written = ring.write(pcm, chunk.item_id)
    return _EMPTY if written == len(pcm) else memoryview(pcm)[written:]
