"""Atheris target: the full server-event decoder returns an event or a ProtocolError, never raises.

Run through fuzz/run.sh (or: python fuzz/fuzz_decoder.py -max_total_time=60 corpus/).
"""

from __future__ import annotations

import sys
import typing

import atheris

with atheris.instrument_imports():
    from pivox.core.errors import ProtocolError
    from pivox.core.events import ServerEvent
    from pivox.protocol.openai import decode_server_event

ACCEPTED = (ProtocolError, *typing.get_args(ServerEvent))


def test_one_input(data: bytes) -> None:
    """Any bytes: an event or a ProtocolError."""
    event = decode_server_event(data)
    assert isinstance(event, ACCEPTED), type(event)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
