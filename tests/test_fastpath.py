"""The audio-delta fast path agrees with the full decoder on every frame it accepts."""

from __future__ import annotations

import base64
import json
import random

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from pivox.core.events import AudioDelta, ItemId, ResponseId
from pivox.core.ring import AudioRing
from pivox.protocol import fastpath
from pivox.protocol.fastpath import AudioChunk, decode_audio, decode_into_ring, parse_audio_delta
from pivox.protocol.openai import decode_server_event

TYPES = ("response.output_audio.delta", "response.audio.delta")
CANONICAL = ("type", "event_id", "response_id", "item_id", "output_index", "content_index")


def ring_contents(ring: AudioRing) -> bytes:
    out = bytearray(ring.available)
    ring.read_into(out)
    return bytes(out)


def fast_path(
    frame: bytes, ring_capacity: int | None = None, in_place: bool = True
) -> AudioDelta | None:
    """What the daemon ends up with on the fast path: None if it left the frame to the full
    decoder (`parse_audio_delta` or `decode_into_ring` gave None). `in_place`: decode any
    span in place in the ring when there is room (else pybase64 and a copy)."""
    chunk = parse_audio_delta(frame)
    if chunk is None:
        return None
    ring = AudioRing(ring_capacity or chunk.size + 64)  # room to decode in place
    with pytest.MonkeyPatch.context() as patch:
        if in_place:
            patch.setattr(fastpath, "IN_PLACE_MIN_B64", 0)
        else:
            patch.setattr(fastpath, "decode_span_into", None)
        rest = decode_into_ring(chunk, ring)
    if rest is None:
        assert ring.available == 0 and ring.written(chunk.item_id) == 0
        return None
    assert chunk.is_plain(), "a span that decodes is the whole delta string"
    audio = bytearray(ring_contents(ring))
    while rest:  # back-pressure: the remainder is written later, never decoded again
        written = ring.write(rest, chunk.item_id)
        rest = rest[written:]
        audio += ring_contents(ring)
    assert ring.written(chunk.item_id) == len(audio)
    return AudioDelta(
        event_id=chunk.event_id,
        response_id=chunk.response_id,
        item_id=chunk.item_id,
        output_index=chunk.output_index,
        content_index=chunk.content_index,
        audio=bytes(audio),
    )


def assert_same_as_full_decoder(
    frame: bytes, ring_capacity: int | None = None, in_place: bool = True
) -> tuple[bool, bool]:
    """Assert the fast path gives the full decoder's result, and that a plain chunk's header
    is the event's (the daemon drops cancelled deltas on it); return (parsed, decoded)."""
    full = decode_server_event(frame)
    chunk = parse_audio_delta(frame)
    if chunk is not None and chunk.is_plain() and isinstance(full, AudioDelta):
        assert chunk[:5] == (full.event_id, full.response_id, full.item_id,
                             full.output_index, full.content_index)
    fast = fast_path(frame, ring_capacity, in_place)
    if fast is None:
        return chunk is not None, False
    assert fast == full
    assert isinstance(full, AudioDelta) and fast.audio == full.audio  # say it outright
    return True, True


# ------------------------------------------------------------------------- frame generation

plain_ids = st.from_regex(r"(event|resp|item)_[A-Za-z0-9]{1,22}", fullmatch=True)
ids = st.one_of(
    plain_ids,
    st.text(min_size=0, max_size=12),  # quotes, backslashes, control and non-ASCII characters
)
pcm_sizes = st.one_of(st.integers(0, 4000), st.sampled_from([960, 9600, 48_000, 1_000_000]))
delta_mutations = st.sampled_from(
    ["none", "escape_slash", "bad_char", "no_padding", "odd", "quote"]
)


def mutate(b64: str, mutation: str) -> str:
    """The JSON source text of the delta string, after one kind of damage or escaping."""
    if mutation == "escape_slash":
        return json.dumps(b64).replace("/", "\\/")
    if mutation == "bad_char":
        return json.dumps(b64[: len(b64) // 2] + "*" + b64[len(b64) // 2 :])
    if mutation == "no_padding":
        return json.dumps(b64.rstrip("="))
    if mutation == "quote":
        return json.dumps(b64[:4] + '"' + b64[4:])
    return json.dumps(b64)


@st.composite
def frames(draw: st.DrawFn) -> tuple[bytes, bool, bool]:
    """A frame, whether it is in the server's own layout (the fast path must parse it) and
    whether its delta is also undamaged (the fast path must decode it too).

    Half the frames keep the server's layout in everything but the delta's damage; the
    other half vary key order, whitespace, id text, extra and repeated keys too.
    """
    usual = draw(st.booleans())

    def vary(strategy: st.SearchStrategy[object], usual_value: object) -> object:
        return usual_value if usual else draw(strategy)

    size = draw(pcm_sizes)
    mutation = draw(delta_mutations)
    pcm = random.Random(draw(st.integers(0, 2**32))).randbytes(size + (mutation == "odd"))
    id_text = plain_ids if usual else ids
    fields: dict[str, object] = {
        "type": draw(st.sampled_from(TYPES)),
        "event_id": draw(id_text),
        "response_id": draw(id_text),
        "item_id": draw(id_text),
        "output_index": draw(st.integers(0, 2**40)),
        "content_index": draw(st.integers(0, 3)),
    }
    if draw(st.booleans()):
        del fields["event_id"]
    keys = list(fields)
    if "event_id" in keys and draw(st.booleans()):
        keys.insert(0, keys.pop(1))  # the event_id-first order of the API reference
    keys = vary(st.permutations(keys), keys)
    colon, comma = vary(st.sampled_from([(":", ","), (": ", ", "), (":", ",\n ")]), (":", ","))
    ensure_ascii = draw(st.booleans())
    members = [
        f"{json.dumps(k)}{colon}{json.dumps(fields[k], ensure_ascii=ensure_ascii)}" for k in keys
    ]
    delta = f'"delta"{colon}{mutate(base64.b64encode(pcm).decode(), mutation)}'
    members.insert(vary(st.integers(0, len(members)), len(members)), delta)
    extra = vary(st.sampled_from(["", "duplicate", "unknown"]), "")
    if extra == "duplicate":
        members.append(f'"item_id"{colon}"item_other"')
    elif extra == "unknown":
        members.insert(draw(st.integers(0, len(members))), f'"obfuscation"{colon}"x"')
    text = "{" + comma.join(members) + "}"
    plain_values = all(
        isinstance(value, int)
        or (value and value.isascii() and value.isprintable() and not set(value) & {'"', "\\"})
        for value in fields.values()
    )
    canonical = (
        members[-1] == delta
        and mutation != "quote"
        and (colon, comma) == (":", ",")
        and not extra
        and plain_values
        and [k for k in keys if k != "event_id"] == [k for k in CANONICAL if k != "event_id"]
        and ("event_id" not in keys or keys.index("event_id") <= 1)
    )
    return text.encode(), canonical, canonical and mutation == "none" and size % 2 == 0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=frames(), ring=st.sampled_from(["roomy", "exact", "small"]), in_place=st.booleans())
def test_fast_path_equals_full_decoder(
    case: tuple[bytes, bool, bool], ring: str, in_place: bool
) -> None:
    """In a ring with room to decode in place, one with just room for the PCM (decoded by
    pybase64 and copied), and one that takes the PCM in pieces (back-pressure)."""
    frame, canonical, undamaged = case
    chunk = parse_audio_delta(frame)
    capacity = {"roomy": None, "exact": max(chunk.size, 1) if chunk else None, "small": 7}[ring]
    parsed, decoded = assert_same_as_full_decoder(frame, capacity, in_place)
    event(f"fast path {'decoded' if decoded else 'parsed' if parsed else 'declined'}")
    event(f"frame of {'over' if len(frame) > 65536 else 'at most'} 64 KiB")
    if canonical:
        assert parsed, "a frame in the server's own layout must take the fast path"
    if undamaged:
        assert decoded, "... and be decoded by it when its delta is plain base64 PCM"


# ------------------------------------------------------------------------- table of cases

GOOD_HEAD = (
    b'{"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1",'
    b'"item_id":"item_1","output_index":0,"content_index":0,"delta":"'
)


@pytest.mark.parametrize(
    ("frame", "parsed", "decoded"),
    [
        (GOOD_HEAD + b'AAEC/w=="}', True, True),
        (GOOD_HEAD + b'AAEC\\/w=="}', True, False),  # an escaped slash: the full decoder's
        (GOOD_HEAD + b'AAEC/w="}', True, False),  # bad padding: the full decoder's ProtocolError
        (GOOD_HEAD + b'AAEC/w*="}', True, False),  # not base64
        (GOOD_HEAD + b'AAEC"}', True, False),  # 3 bytes of PCM16: odd
        (GOOD_HEAD + b'"}', True, True),  # empty delta
        (GOOD_HEAD + b'}', False, False),  # the delta's opening quote is the frame's last
        (GOOD_HEAD + b'AAEC/w=="}\n', False, False),  # trailing whitespace
        (GOOD_HEAD + b'AAEC\\"/w=="}', True, False),  # an escaped quote in the span
        (GOOD_HEAD + b'AAEC/w==","item_id":"item_2"}', True, False),  # a key after delta
        (GOOD_HEAD + b'AAEC/w==","type":"input_audio_buffer.speech_started","item_id":"i"}',
         True, False),  # a key after delta makes it another event
        (GOOD_HEAD.replace(b'"type"', b'"event_id":"e0","type"') + b'AAEC/w=="}', False, False),
        (GOOD_HEAD.replace(b"item_1", b"item\\u0031") + b'AAEC/w=="}', False, False),
        (GOOD_HEAD.replace(b"output_audio", b"audio") + b'AAEC/w=="}', True, True),  # beta
        (GOOD_HEAD.replace(b"output_audio", b"output_text") + b'AAEC/w=="}', False, False),
    ],
)
@pytest.mark.parametrize("in_place", [True, False], ids=["libbase64 in place", "pybase64 + copy"])
def test_table(frame: bytes, parsed: bool, decoded: bool, in_place: bool) -> None:
    assert assert_same_as_full_decoder(frame, in_place=in_place) == (parsed, decoded)


def test_only_bytes_take_the_fast_path() -> None:
    frame = GOOD_HEAD + b'AAEC/w=="}'
    assert parse_audio_delta(frame) is not None
    assert parse_audio_delta(bytearray(frame)) is None  # type: ignore[arg-type]
    assert parse_audio_delta(frame.decode()) is None  # type: ignore[arg-type]


def test_a_key_after_delta_is_no_plain_chunk() -> None:
    """Its header may not be the event's: the daemon must not drop it as a cancelled delta."""
    chunk = parse_audio_delta(GOOD_HEAD + b'AAEC/w==","response_id":"resp_2"}')
    assert chunk is not None and chunk.response_id == "resp_1" and not chunk.is_plain()
    assert decode_audio(chunk) is None
    full = decode_server_event(GOOD_HEAD + b'AAEC/w==","response_id":"resp_2"}')
    assert isinstance(full, AudioDelta) and full.response_id == "resp_2"


def test_header_is_read_without_decoding() -> None:
    """A delta of a cancelled response can be dropped on its header alone."""
    frame = GOOD_HEAD + b'AAEC/w=="}'
    chunk = parse_audio_delta(frame)
    assert chunk == AudioChunk(
        event_id="event_1",
        response_id=ResponseId("resp_1"),
        item_id=ItemId("item_1"),
        output_index=0,
        content_index=0,
        frame=frame,
        start=len(GOOD_HEAD),
        end=len(frame) - 2,
    )
    assert chunk.b64 == b"AAEC/w==" and chunk.b64.obj is frame and chunk.size == 4
    assert decode_audio(chunk) == b"\x00\x01\x02\xff"


def test_full_ring_returns_the_rest_to_write_later() -> None:
    pcm = bytes(range(200)) * 10
    frame = GOOD_HEAD + base64.b64encode(pcm) + b'"}'
    chunk = parse_audio_delta(frame)
    assert chunk is not None and chunk.size == len(pcm)
    ring = AudioRing(1500)
    rest = decode_into_ring(chunk, ring)
    assert isinstance(rest, memoryview) and bytes(rest) == pcm[1500:]
    assert ring_contents(ring) == pcm[:1500]
    assert ring.write(rest, chunk.item_id) == 500
    assert ring_contents(ring) == pcm[1500:]
    assert ring.written("item_1") == ring.played("item_1") == len(pcm)


def test_at_the_ring_end_both_decodes_give_the_same_audio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In place only with 3 bytes of room to spare (libbase64 may use them), else pybase64."""
    monkeypatch.setattr(fastpath, "IN_PLACE_MIN_B64", 0)
    pcm = bytes(range(200)) * 3
    chunk = parse_audio_delta(GOOD_HEAD + base64.b64encode(pcm) + b'"}')
    assert chunk is not None
    ring = AudioRing(2000)
    ring.write(b"q" * 1400, "item_0")  # the tail room is 600 bytes: the copy path...
    assert decode_into_ring(chunk, ring) == b""
    ring.read_into(bytearray(1400))
    assert ring_contents(ring) == pcm
    ring.clear()
    ring.write(b"q" * 1390, "item_0")  # ... and 610: in place
    assert decode_into_ring(chunk, ring) == b""
    ring.read_into(bytearray(1390))
    assert ring_contents(ring) == pcm and ring.written("item_1") == 1200


@example(frame=b"")
@given(frame=st.binary(max_size=300).map(lambda tail: GOOD_HEAD + tail))
def test_any_tail_is_accepted_or_declined_never_raises(frame: bytes) -> None:
    assert_same_as_full_decoder(frame)
