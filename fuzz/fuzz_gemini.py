"""Atheris target: the Gemini decoder returns events or one ProtocolError, never raises, and a
bad frame leaves its state as it was; the Gemini fast path agrees with it on any frame.

Inputs not starting with "{" are put after a compact audio head, so most reach the span
checks of the fast path.

Run through fuzz/run.sh (or: python fuzz/fuzz_gemini.py -max_total_time=60 corpus/).
"""

from __future__ import annotations

import sys
import typing

import atheris

with atheris.instrument_imports():
    from pivox.core.errors import ProtocolError
    from pivox.core.events import AudioDelta, ServerEvent
    from pivox.protocol.fastpath import decode_audio
    from pivox.protocol.gemini import GeminiCodec, LinkState
    from pivox.protocol.gemini_fastpath import parse_audio

ACCEPTED = (ProtocolError, *typing.get_args(ServerEvent))
AUDIO = (
    b'{"serverContent":{"modelTurn":{"parts":[{"inlineData":'
    b'{"mimeType":"audio/pcm;rate=24000","data":"AAAAAA=="}}]}}}'
)


HEAD = AUDIO[: AUDIO.index(b'"data":"') + len(b'"data":"')]


def test_one_input(data: bytes) -> None:
    """Any bytes after an open response: events or a ProtocolError; a refused frame moves
    nothing (the next audio still belongs to the open response); where the fast path decodes
    a frame, the full decoder gives exactly that one AudioDelta."""
    codec = GeminiCodec(model="m", state=LinkState())
    (_, opened) = codec.decode(AUDIO)
    data = data if data[:1] == b"{" else HEAD + data
    chunk = parse_audio(data, codec)
    pcm = None if chunk is None else decode_audio(chunk)
    events = codec.decode(data)
    if chunk is not None and pcm is not None:
        assert chunk.is_plain()
        assert events == [AudioDelta(response_id=opened.response_id, item_id=opened.item_id,
                                     output_index=0, content_index=0, audio=pcm)], events
    assert events and all(isinstance(e, ACCEPTED) for e in events), events
    if isinstance(events[0], ProtocolError):
        assert len(events) == 1
        (after,) = codec.decode(AUDIO)
        assert after.response_id == opened.response_id, (after, opened)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
