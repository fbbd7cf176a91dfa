"""Atheris target: the audio-delta fast path agrees with the full decoder on any frame.

Inputs are an audio-delta head in the server's layout followed by fuzzed bytes, so most of
them reach the span checks. Run through fuzz/run.sh.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from pivox.core.events import AudioDelta
    from pivox.core.ring import AudioRing
    from pivox.protocol.fastpath import decode_audio, decode_into_ring, parse_audio_delta
    from pivox.protocol.openai import decode_server_event

HEAD = (b'{"type":"response.output_audio.delta","event_id":"e","response_id":"r",'
        b'"item_id":"i","output_index":0,"content_index":0,"delta":"')


def test_one_input(data: bytes) -> None:
    """The fast path's PCM and header are exactly the full decoder's, and it never raises:
    decoded by pybase64 and decoded in place in the ring alike."""
    frame = HEAD + data if data[:1] != b"{" else data
    chunk = parse_audio_delta(frame)
    if chunk is None:
        return
    pcm = decode_audio(chunk)
    full = decode_server_event(frame)
    if chunk.is_plain() and isinstance(full, AudioDelta):
        assert full.item_id == chunk.item_id and full.response_id == chunk.response_id
    if pcm is not None:  # None: the daemon uses the full decoder's result
        assert chunk.is_plain()
        assert isinstance(full, AudioDelta) and full.audio == pcm
        assert full.item_id == chunk.item_id and full.response_id == chunk.response_id
    ring = AudioRing(len(frame))  # room to decode in place
    rest = decode_into_ring(chunk, ring)
    assert (rest is None) == (pcm is None) and not rest
    played = bytearray(ring.available)
    ring.read_into(played)
    assert played == (pcm or b"")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
