"""Reply pacing shared by both bundled servers (server/pacing.py), driven with fake time."""

from __future__ import annotations

import orjson

from pivox.core.events import ResponseCreate
from pivox.protocol.openai import encode_client_event
from pivox.server.conversation import Conversation
from pivox.server.gemini import GeminiConversation
from pivox.server.options import ServerOptions
from pivox.server.pacing import OUTPUT_BYTES_PER_MS, PacedReply

ONE_SECOND = bytes(48_000)


def test_chunk_k_is_due_k_chunks_of_audio_time_over_speed_after_the_start() -> None:
    reply = PacedReply(audio=bytes(250 * OUTPUT_BYTES_PER_MS), words=[], started=7.0,
                       chunk_ms=100, speed=4.0)
    due, sizes = [], []
    while not reply.finished:
        due.append(round(reply.due() - 7.0, 6))
        sizes.append(len(reply.take()))
    assert due == [0.0, 0.025, 0.05]
    assert sizes == [4800, 4800, 2400]  # the last chunk is what is left
    assert reply.take() == b"" and reply.finished


def test_speed_zero_makes_every_chunk_due_at_the_start() -> None:
    reply = PacedReply(audio=ONE_SECOND, words=[], started=3.0, chunk_ms=200, speed=0.0)
    assert {reply.due() for _ in range(5) if reply.take()} == {3.0}


def deadlines(conv: Conversation | GeminiConversation, start: float) -> list[float]:
    """Seconds after `start` at which each tick that sends audio was due."""
    times = []
    while (deadline := conv.next_deadline()) is not None:
        assert conv.tick(deadline - 0.001) == []  # nothing early
        if conv.tick(deadline):
            times.append(round(deadline - start, 6))
    return times


def test_both_servers_pace_a_reply_alike() -> None:
    options = ServerOptions(speed=2.0, chunk_ms=100)
    openai = Conversation(options, dialect="ga", model="m", session_id="sess_test",
                          synthesize=lambda text: ONE_SECOND)
    openai.receive(encode_client_event(ResponseCreate()), 10.0)
    gemini = GeminiConversation(options, synthesize=lambda text: ONE_SECOND, sessions={},
                                now=10.0)
    gemini.receive(orjson.dumps({"setup": {"model": "models/m"}}), 10.0)
    gemini.receive(orjson.dumps({"realtimeInput": {"text": "hi"}}), 10.0)
    expected = [round(0.05 * k, 6) for k in range(10)]
    assert deadlines(openai, 10.0) == expected
    assert deadlines(gemini, 10.0) == expected
