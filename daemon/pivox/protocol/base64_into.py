"""Base64-decode a span of a bytes object straight into memory the caller owns.

pybase64 decodes into a new bytes object only. Its C extension is libbase64, whose C API it
exports, and libbase64's `base64_decode` writes into any buffer: calling it through ctypes
saves a copy of the PCM into the AudioRing and the allocation of the decoded bytes
(measured in bench/decode.py). It is the decode pybase64's `b64decode(..., validate=True)`
runs: libbase64's stream decoder with the SIMD codec pybase64 chose at import, failing unless
the input ends on a whole quantum, so both accept the same input and give the same bytes.

`decode_span_into` is None where this cannot be done safely (not CPython, a pybase64 without
the symbol, a library that fails the self-check at import); callers then decode with pybase64
and copy.
"""

from __future__ import annotations

import ctypes
import platform
from collections.abc import Callable

import pybase64

__all__ = ["decode_span_into", "max_decoded_size"]

SpanDecoder = Callable[[bytes, int, int, int], int]


def max_decoded_size(b64_length: int) -> int:
    """Bytes libbase64 may write for `b64_length` characters of input, valid or not."""
    return b64_length // 4 * 3 + 3  # pybase64 allocates as much for its own output


def _load() -> SpanDecoder | None:
    """The decoder, or None if the platform cannot run it (see the module docstring)."""
    if platform.python_implementation() != "CPython":
        return None
    try:
        from pybase64 import _pybase64  # the C extension; absent in the pure-Python fallback

        # PyDLL keeps the GIL for the few µs of a decode: handing it over costs more.
        base64_decode = ctypes.PyDLL(_pybase64.__file__).base64_decode
    except (ImportError, OSError, AttributeError):
        return None
    base64_decode.argtypes = (
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
        ctypes.c_int,
    )
    base64_decode.restype = ctypes.c_int
    data_offset = bytes.__basicsize__ - 1  # where CPython keeps a bytes object's data

    def decode_span_into(src: bytes, start: int, length: int, address: int) -> int:
        """Decode `src[start:start + length]` to `address` (room for `max_decoded_size`
        bytes); return the bytes decoded, or -1 if the span is not strict base64."""
        if type(src) is not bytes:  # the data address below holds for exactly bytes
            raise TypeError(f"expected bytes, got {type(src).__name__}")
        if start < 0 or length < 0 or start + length > len(src):
            raise ValueError(f"span {start}+{length} outside {len(src)} bytes")
        out_len = ctypes.c_size_t()
        ok = base64_decode(id(src) + data_offset + start, length, address, out_len, 0)
        return out_len.value if ok == 1 else -1

    return decode_span_into if _works(decode_span_into) else None


def _works(decode: SpanDecoder) -> bool:
    """Whether `decode` agrees with pybase64 on a few spans, valid and not."""
    probe = b'"' + pybase64.b64encode(bytes(range(256)) * 3) + b'"'
    out = ctypes.create_string_buffer(max_decoded_size(len(probe)))
    address = ctypes.addressof(out)
    valid = decode(probe, 1, len(probe) - 2, address)
    if valid != 768 or out.raw[:valid] != bytes(range(256)) * 3:
        return False
    return all(decode(bad, 0, len(bad), address) == -1 for bad in (b"AAE", b"AA*A", b'AA"A'))


decode_span_into: SpanDecoder | None = _load()
