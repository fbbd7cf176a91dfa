"""The audio-delta fast path: raw frame bytes to PCM in the AudioRing without a str or a dict.

Output audio is nearly all of what the server sends (`response.output_audio.delta` in GA,
`response.audio.delta` in beta). For a frame laid out the way the server writes it - compact
JSON, `type` and `event_id` first (either order), then `response_id`, `item_id`,
`output_index`, `content_index`, and `delta` last - `parse_audio_delta` reads the small
fields with one anchored regex over the head of the frame and returns an `AudioChunk` whose
`b64` is a memoryview of the base64 span inside the frame: nothing of the payload is copied.

The caller then either drops the chunk (a delta of a cancelled response: never decoded) or
calls `decode_into_ring`, which base64-decodes the span and writes the PCM into the ring.
pybase64 (like binascii) cannot decode into a caller's buffer, so the audio is copied twice:
once by the decoder, once into the ring (measured in bench/decode.py).

Anything else returns None from `parse_audio_delta` - other key orders, whitespace, escapes
or non-ASCII in the small fields, extra or repeated keys, a quote inside the span, a frame
over the decoder's size limit - and the
caller uses `pivox.protocol.openai.decode_server_event`. If the span turns out not to be
strict base64 (escapes such as `\\/`, bad characters, bad padding) or decodes to an odd
number of bytes, the chunk is re-decoded by `decode_server_event`, so the PCM or the
ProtocolError is always exactly the full decoder's.
"""

from __future__ import annotations

import binascii
import re
from typing import NamedTuple, cast

import pybase64

from pivox.errors import ProtocolError
from pivox.events import AudioDelta, ItemId, ResponseId
from pivox.protocol.openai import MAX_FRAME_BYTES, decode_server_event
from pivox.ring import AudioRing

__all__ = ["AudioChunk", "decode_audio", "decode_into_ring", "parse_audio_delta"]

_ID = rb'"([\x20\x21\x23-\x5b\x5d-\x7e]+)"'  # printable ASCII but for the quote and backslash
_INT = rb"(0|[1-9][0-9]{0,17})"  # up to 18 digits: always an int64 to orjson
_HEAD = re.compile(
    rb'\{(?:"event_id":' + _ID + rb",)?"
    rb'"type":"response\.(?:output_)?audio\.delta",'
    rb'(?:"event_id":' + _ID + rb",)?"
    rb'"response_id":' + _ID + rb","
    rb'"item_id":' + _ID + rb","
    rb'"output_index":' + _INT + rb","
    rb'"content_index":' + _INT + rb","
    rb'"delta":"'
)
_EMPTY = memoryview(b"")


class AudioChunk(NamedTuple):
    """An audio delta read from a raw frame, its PCM not yet decoded.

    `b64` is the base64 `delta` span, a view into the frame; `size` is the PCM length that
    span decodes to if it is valid base64. A named tuple, not a frozen dataclass: it is
    built once per frame on the hot path, and a tuple is built three times faster.
    """

    event_id: str | None
    response_id: ResponseId
    item_id: ItemId
    output_index: int
    content_index: int
    size: int
    b64: memoryview


def parse_audio_delta(frame: bytes) -> AudioChunk | None:
    """The chunk of an audio-delta frame in the server's own layout, else None (use the full
    decoder)."""
    if not frame.endswith(b'"}') or len(frame) > MAX_FRAME_BYTES:
        return None
    head = _HEAD.match(frame)
    if head is None:
        return None
    start = head.end()
    end = len(frame) - 2
    if frame.find(b'"', start) != end:  # the span must close at the frame's last quote
        return None
    first_event_id, second_event_id, response_id, item_id, output_index, content_index = (
        head.groups()
    )
    if first_event_id is not None and second_event_id is not None:
        return None  # a repeated key: leave it to the full decoder
    event_id = first_event_id or second_event_id
    return AudioChunk(
        event_id.decode() if event_id is not None else None,
        ResponseId(response_id.decode()),
        ItemId(item_id.decode()),
        int(output_index),
        int(content_index),
        # "=" padding can only be the span's last two bytes (the head ends in `:"`).
        (end - start) // 4 * 3 - frame.count(b"=", end - 2, end),
        memoryview(frame)[start:end],
    )


def decode_audio(chunk: AudioChunk) -> bytes | ProtocolError:
    """The PCM of `chunk`, or the ProtocolError the full decoder gives for its frame."""
    try:
        pcm = pybase64.b64decode(chunk.b64, validate=True)
    except (binascii.Error, ValueError):
        return _full_decode(chunk)
    if len(pcm) % 2:
        return _full_decode(chunk)
    return pcm


def decode_into_ring(chunk: AudioChunk, ring: AudioRing) -> memoryview | ProtocolError:
    """Decode `chunk` and write as much PCM as fits into `ring` under its item.

    Returns the PCM that did not fit (empty when all did): the caller waits for space and
    writes it with `ring.write(rest, chunk.item_id)`, never decoding again.
    """
    pcm = decode_audio(chunk)
    if isinstance(pcm, ProtocolError):
        return pcm
    written = ring.write(pcm, chunk.item_id)
    return _EMPTY if written == len(pcm) else memoryview(pcm)[written:]


def _full_decode(chunk: AudioChunk) -> bytes | ProtocolError:
    """Defer to the full decoder: the frame's JSON around the span is known, so its answer is
    an AudioDelta with this chunk's fields or a ProtocolError."""
    event = decode_server_event(cast(bytes, chunk.b64.obj))  # the frame the span views
    if isinstance(event, ProtocolError):
        return event
    assert isinstance(event, AudioDelta), f"fast path misread a {type(event).__name__}"
    return event.audio
