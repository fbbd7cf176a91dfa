"""Atheris target: the Gemini decoder returns events or one ProtocolError, never raises, and a
bad frame leaves its state as it was.

Run through fuzz/run.sh (or: python fuzz/fuzz_gemini.py -max_total_time=60 corpus/).
"""

from __future__ import annotations

import sys
import typing

import atheris

with atheris.instrument_imports():
    from pivox.errors import ProtocolError
    from pivox.events import ServerEvent
    from pivox.protocol.gemini import GeminiCodec, LinkState

ACCEPTED = (ProtocolError, *typing.get_args(ServerEvent))
AUDIO = (
    b'{"serverContent":{"modelTurn":{"parts":[{"inlineData":'
    b'{"mimeType":"audio/pcm;rate=24000","data":"AAAAAA=="}}]}}}'
)


def test_one_input(data: bytes) -> None:
    """Any bytes after an open response: events or a ProtocolError; a refused frame moves
    nothing (the next audio still belongs to the open response)."""
    codec = GeminiCodec(model="m", state=LinkState())
    (_, opened) = codec.decode(AUDIO)
    events = codec.decode(data)
    assert events and all(isinstance(e, ACCEPTED) for e in events), events
    if isinstance(events[0], ProtocolError):
        assert len(events) == 1
        (after,) = codec.decode(AUDIO)
        assert after.response_id == opened.response_id, (after, opened)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
