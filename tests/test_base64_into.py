"""decode_span_into: libbase64 through ctypes agrees with pybase64's strict decode."""

from __future__ import annotations

import base64
import binascii
import ctypes

import pybase64
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pivox.protocol.base64_into import decode_span_into, max_decoded_size

pytestmark = pytest.mark.skipif(decode_span_into is None, reason="no libbase64 via ctypes here")

BASE64_ISH = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\"*\\ \n",
    max_size=80,
)


def pybase64_decode(span: bytes) -> bytes | None:
    try:
        return pybase64.b64decode(span, validate=True)
    except (binascii.Error, ValueError):
        return None


def decode_framed(span: bytes, before: bytes = b'{"delta":"', after: bytes = b'"}') -> bytes | None:
    """Decode `span` where it sits inside a larger frame, through a guarded buffer."""
    assert decode_span_into is not None
    frame = before + span + after
    room = max_decoded_size(len(span))
    guard = b"\xa5" * 16
    out = ctypes.create_string_buffer(guard + bytes(room) + guard, 32 + room)
    size = decode_span_into(frame, len(before), len(span), ctypes.addressof(out) + 16)
    assert out.raw[:16] == guard and out.raw[16 + room :] == guard, "wrote outside its room"
    return None if size < 0 else out.raw[16 : 16 + size]


@example(span=b"")
@example(span=b"AA==")
@example(span=b"AA==AA==")
@example(span=b"AAA=A")
@example(span=b"AA\\/")
@given(span=st.one_of(
    BASE64_ISH.map(str.encode),
    st.binary(max_size=2000).map(base64.b64encode),
))
def test_same_bytes_and_same_verdict_as_pybase64(span: bytes) -> None:
    assert decode_framed(span) == pybase64_decode(span)


def test_a_large_payload_decodes_in_place() -> None:
    pcm = bytes(range(256)) * 400
    assert decode_framed(base64.b64encode(pcm)) == pcm


@pytest.mark.parametrize(("start", "length"), [(-1, 4), (0, -1), (2, 9), (11, 0)])
def test_a_span_outside_the_source_is_refused(start: int, length: int) -> None:
    assert decode_span_into is not None
    out = ctypes.create_string_buffer(64)
    with pytest.raises(ValueError, match="outside"):
        decode_span_into(b"AAAAAAAAAA", start, length, ctypes.addressof(out))


@pytest.mark.parametrize("source", [bytearray(b"AAAA"), memoryview(b"AAAA")])
def test_only_bytes_are_read(source: object) -> None:
    """Another buffer type keeps its data elsewhere: refused, never read."""
    assert decode_span_into is not None
    out = ctypes.create_string_buffer(64)
    with pytest.raises(TypeError, match="expected bytes"):
        decode_span_into(source, 0, 4, ctypes.addressof(out))  # type: ignore[arg-type]
