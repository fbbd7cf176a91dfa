"""The audio fast path for Gemini frames: raw bytes to PCM in the AudioRing, no dict, no str.

A Gemini audio frame is `{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":
"audio/pcm;rate=24000","data":"<base64>"}}]}}}`: the base64 sits five objects deep, and
`mimeType` may come before or after `data` (`role: "model"` may sit in `modelTurn`, before or
after `parts`); whitespace between tokens is allowed (a pretty-printing server). `parse_audio`
compares the frame's ends with the two compact layouts, else matches the head with one
anchored regex and the tail with another anchored at the frame's end, and returns an
`AudioChunk` (`pivox.protocol.fastpath`) whose span lies between them, under the ids of the
response the codec has open; `decode_into_ring` then decodes it as for OpenAI frames.

It takes only frames the full decoder would turn into exactly one AudioDelta without moving
its state: the codec must have a response open that already had audio (`GeminiCodec.audio_ids`);
a first audio frame, which opens a response, goes to the full decoder. Anything else - other
keys, a repeated or missing `mimeType`, another rate - returns None, and so does
`decode_audio` for a span that is not strict standard base64 (a quote, an escape, URL-safe
base64): the caller then uses `GeminiCodec.decode`, so the events are always the full
decoder's.
"""

from __future__ import annotations

import re
from typing import Final

from pivox.protocol.fastpath import AudioChunk
from pivox.protocol.gemini import GeminiCodec
from pivox.protocol.openai import MAX_FRAME_BYTES

__all__ = ["parse_audio"]

_W = rb"[ \t\r\n]*"
_MIME = rb'"mimeType"' + _W + rb":" + _W + rb'"audio/pcm;rate=24000"'
_ROLE = rb'"role"' + _W + rb":" + _W + rb'"model"'
_HEAD: Final = re.compile(
    rb"\{" + _W + rb'"serverContent"' + _W + rb":" + _W + rb"\{" + _W + rb'"modelTurn"' + _W
    + rb":" + _W + rb"\{" + _W + rb"(" + _ROLE + _W + rb"," + _W + rb")?"
    + rb'"parts"' + _W + rb":" + _W + rb"\[" + _W + rb"\{" + _W + rb'"inlineData"' + _W + rb":"
    + _W + rb"\{" + _W + rb"(" + _MIME + _W + rb"," + _W + rb")?" + rb'"data"' + _W + rb":"
    + _W + rb'"'
)
_TAIL: Final = re.compile(
    rb'"' + _W + rb"(," + _W + _MIME + _W + rb")?" + rb"\}" + _W + rb"\}" + _W + rb"\]" + _W
    + rb"(," + _W + _ROLE + _W + rb")?" + rb"\}" + _W + rb"\}" + _W + rb"\}" + _W + rb"\Z"
)
_TAIL_WINDOW: Final = 160
"""Bytes at the frame's end searched for the tail: room for it with generous whitespace."""
_PREFIX: Final = b'{"serverContent":{"modelTurn":{"parts":[{"inlineData":{'
_MIME_FIRST: Final = (_PREFIX + b'"mimeType":"audio/pcm;rate=24000","data":"', b'"}}]}}}')
_DATA_FIRST: Final = (_PREFIX + b'"data":"', b'","mimeType":"audio/pcm;rate=24000"}}]}}}')
"""The compact layouts (mimeType first, as Google's samples show, or last, as pydantic writes
it): two byte comparisons each, tried before the regexes."""


def parse_audio(frame: bytes, codec: GeminiCodec) -> AudioChunk | None:
    """The chunk of a Gemini audio frame continuing `codec`'s open response, else None (use
    `codec.decode`)."""
    if type(frame) is not bytes or len(frame) > MAX_FRAME_BYTES:
        return None
    ids = codec.audio_ids()
    if ids is None:
        return None
    response_id, item_id = ids
    for head_bytes, tail_bytes in (_MIME_FIRST, _DATA_FIRST):
        if frame.startswith(head_bytes) and frame.endswith(tail_bytes):
            start, end = len(head_bytes), len(frame) - len(tail_bytes)
            if start <= end:
                return AudioChunk(None, response_id, item_id, 0, 0, frame, start, end)
    head = _HEAD.match(frame)
    if head is None:
        return None
    tail = _TAIL.search(frame, max(head.end(), len(frame) - _TAIL_WINDOW))
    if tail is None:
        return None
    role_head, mime_head = head.groups()
    mime_tail, role_tail = tail.groups()
    if (mime_head is None) == (mime_tail is None) or (role_head and role_tail):
        return None  # mimeType missing or twice, role twice: the full decoder says what
    return AudioChunk(None, response_id, item_id, 0, 0, frame, head.end(), tail.start())
