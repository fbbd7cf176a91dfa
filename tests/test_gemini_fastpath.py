"""The Gemini audio fast path agrees with GeminiCodec.decode on every frame it accepts."""

from __future__ import annotations

from typing import Any

import orjson
import pybase64
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivox.core.events import AudioDelta
from pivox.core.ring import AudioRing
from pivox.protocol import fastpath
from pivox.protocol.fastpath import decode_into_ring
from pivox.protocol.gemini import OUTPUT_MIME, GeminiCodec, LinkState
from pivox.protocol.gemini_fastpath import parse_audio

OPENER = orjson.dumps({"serverContent": {"modelTurn": {"parts": [{"inlineData": {
    "mimeType": OUTPUT_MIME, "data": "AAAAAA=="}}]}}})


def primed() -> GeminiCodec:
    """A codec with a response open that already had audio (what the fast path continues)."""
    codec = GeminiCodec(model="m", state=LinkState())
    assert [type(e).__name__ for e in codec.decode(OPENER)] == ["ResponseCreated", "AudioDelta"]
    return codec


def frame_of(pcm_b64: str, *, mime_first: bool, role: str, indent: bool,
             mime: str = OUTPUT_MIME) -> bytes:
    inline = {"mimeType": mime, "data": pcm_b64} if mime_first else {
        "data": pcm_b64, "mimeType": mime}
    parts = [{"inlineData": inline}]
    turn: dict[str, Any] = {"parts": parts}
    if role == "before":
        turn = {"role": "model", "parts": parts}
    elif role == "after":
        turn = {"parts": parts, "role": "model"}
    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps({"serverContent": {"modelTurn": turn}}, option=option)


def fast(frame: bytes, codec: GeminiCodec, in_place: bool) -> AudioDelta | None:
    """The daemon's fast path result, or None when it hands the frame to the full decoder."""
    chunk = parse_audio(frame, codec)
    if chunk is None:
        return None
    ring = AudioRing(chunk.size + 64)
    with pytest.MonkeyPatch.context() as patch:
        if in_place:
            patch.setattr(fastpath, "IN_PLACE_MIN_B64", 0)
        else:
            patch.setattr(fastpath, "decode_span_into", None)
        rest = decode_into_ring(chunk, ring)
    if rest is None:
        assert ring.available == 0
        return None
    assert chunk.is_plain() and len(rest) == 0
    out = bytearray(ring.available)
    ring.read_into(out)
    return AudioDelta(response_id=chunk.response_id, item_id=chunk.item_id, output_index=0,
                      content_index=0, audio=bytes(out))


MUTATIONS = st.sampled_from(["none", "quote", "escape", "urlsafe", "odd", "junk", "no_mime",
                             "two_mimes", "rate", "extra_key", "truncate"])


def mutate(frame: bytes, how: str, b64: str) -> bytes:
    if how == "quote" and len(b64) > 4:
        return frame.replace(b64.encode(), (b64[:4] + '\\"' + b64[4:]).encode())
    if how == "escape":
        return frame.replace(b64.encode(), (b64[:4] + "\\/" + b64[4:]).encode())
    if how == "urlsafe":
        return frame.replace(b64.encode(), b64.replace("+", "-").replace("/", "_").encode())
    if how == "odd":
        return frame.replace(b64.encode(), pybase64.b64encode(b"abc"))
    if how == "junk":
        return frame + b"x"
    if how == "no_mime":
        return frame.replace(b'"mimeType":"audio/pcm;rate=24000",', b"").replace(
            b',"mimeType":"audio/pcm;rate=24000"', b"")
    if how == "two_mimes":
        return frame.replace(b'"data":', b'"mimeType":"audio/pcm;rate=24000","data":')
    if how == "rate":
        return frame.replace(b"rate=24000", b"rate=16000")
    if how == "extra_key":
        return frame.replace(b'"inlineData":', b'"x":1,"inlineData":')
    if how == "truncate":
        return frame[:-1]
    return frame


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.booleans(), st.sampled_from(["none", "before", "after"]),
       st.booleans(), MUTATIONS, st.booleans())
def test_fast_path_is_the_full_decoder(pcm: bytes, mime_first: bool, role: str, indent: bool,
                                       how: str, in_place: bool) -> None:
    pcm = pcm[: len(pcm) // 2 * 2]
    b64 = pybase64.b64encode(pcm).decode()
    frame = mutate(frame_of(b64, mime_first=mime_first, role=role, indent=indent), how, b64)
    full_codec, fast_codec = primed(), primed()
    expected = full_codec.decode(frame)
    got = fast(frame, fast_codec, in_place)
    if got is None:
        assert fast_codec.decode(frame) == expected
    else:
        assert [got] == expected
    # either way both codecs are left in the same state
    assert fast_codec.audio_ids() == full_codec.audio_ids()


def test_the_servers_own_layout_and_a_pretty_printed_one_take_the_fast_path() -> None:
    pcm = bytes(range(256)) * 4
    b64 = pybase64.b64encode(pcm).decode()
    for indent in (False, True):
        for mime_first in (False, True):
            got = fast(frame_of(b64, mime_first=mime_first, role="none", indent=indent),
                       primed(), True)
            assert got is not None and got.audio == pcm


def test_no_fast_path_before_a_response_has_audio() -> None:
    codec = GeminiCodec(model="m")
    assert parse_audio(OPENER, codec) is None  # the first frame opens the response
    codec.decode(OPENER)
    assert parse_audio(OPENER, codec) is not None
    codec.decode(orjson.dumps({"serverContent": {"generationComplete": True}}))
    assert parse_audio(OPENER, codec) is None  # audio after AudioDone reopens it: full path
