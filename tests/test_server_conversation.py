"""The pure per-connection core of the local server: pacing and ordering, driven with fake time."""

from __future__ import annotations

from typing import Any

import orjson

from pivox.core.events import (
    AudioDelta,
    ClientEvent,
    InputAudioAppend,
    InputAudioCommit,
    InputTranscriptCompleted,
    InputTranscriptDelta,
    ResponseCancel,
    ResponseCreate,
    ResponseDone,
    ServerEvent,
    SessionConfig,
    SessionUpdate,
    UserText,
)
from pivox.protocol.openai import decode_server_event, encode_client_event, encode_server_event
from pivox.server.conversation import Conversation
from pivox.server.options import ServerOptions

ONE_SECOND = bytes(48_000)


def conversation(stale_count: int = 0, **options: object) -> Conversation:
    return Conversation(
        ServerOptions(**options),  # type: ignore[arg-type]
        dialect="ga",
        model="m",
        session_id="sess_test",
        synthesize=lambda text: ONE_SECOND,
        stale_count=stale_count,
    )


def feed(conv: Conversation, event: ClientEvent, now: float = 0.0) -> list[ServerEvent]:
    decoded, out = conv.receive(encode_client_event(event), now)
    assert decoded == event
    return out


def test_deltas_are_paced_at_speed_times_real_time() -> None:
    conv = conversation(speed=2.0, chunk_ms=100)
    feed(conv, ResponseCreate(), now=10.0)
    times: list[float] = []
    now = 10.0
    while (deadline := conv.next_deadline()) is not None:
        assert conv.tick(deadline - 0.001) == []  # nothing early
        out = conv.tick(deadline)
        assert sum(isinstance(e, AudioDelta) for e in out) == 1
        times.append(round(deadline - now, 3))
    assert times == [round(0.05 * k, 3) for k in range(10)]
    assert isinstance(out[-2], ResponseDone) and out[-2].status == "completed"


def test_speed_zero_sends_one_delta_per_tick_without_waiting() -> None:
    conv = conversation(speed=0.0, chunk_ms=250)
    feed(conv, ResponseCreate(), now=5.0)
    counts = []
    while conv.next_deadline() == 5.0:
        counts.append(sum(isinstance(e, AudioDelta) for e in conv.tick(5.0)))
    assert counts == [1, 1, 1, 1]
    assert conv.next_deadline() is None


def test_stale_deltas_come_before_the_cancelled_done() -> None:
    conv = conversation(stale_count=2, speed=0.0)
    feed(conv, ResponseCreate())
    conv.tick(0.0)
    assert feed(conv, ResponseCancel()) == []
    first, second = conv.tick(0.0), conv.tick(0.0)
    assert [type(e).__name__ for e in first] == ["AudioDelta"]
    assert [type(e).__name__ for e in second][:2] == ["TranscriptDelta", "AudioDelta"]
    done = [e for e in second if isinstance(e, ResponseDone)]
    assert done[0].status == "cancelled"
    assert conv.tick(0.0) == [] and conv.next_deadline() is None


def test_input_transcription_follows_the_commit_when_asked_for() -> None:
    conv = conversation()
    feed(
        conv,
        SessionUpdate(session=SessionConfig(turn_detection=None, transcription_model="whisper-1")),
    )
    feed(conv, InputAudioAppend(audio=ONE_SECOND))
    frames = [encode_server_event(e) for e in feed(conv, InputAudioCommit())]
    out = [decode_server_event(frame) for frame in frames]
    names = [type(e).__name__ for e in out]
    assert names == ["AudioCommitted", "ItemCreated", "ItemCreated",
                     *["InputTranscriptDelta"] * 4, "InputTranscriptCompleted"]
    deltas = "".join(e.delta for e in out if isinstance(e, InputTranscriptDelta))
    assert isinstance(out[-1], InputTranscriptCompleted)
    assert out[-1].transcript == deltas == "(1.0 seconds of audio)"
    assert orjson.loads(frames[-1])["usage"] == {"type": "duration", "seconds": 1.0}


def test_the_oldest_items_are_forgotten_past_the_conversation_bound() -> None:
    conv = conversation()
    text = "x" * (1024 * 1024)
    ids = []
    for _ in range(12):  # 12 MiB of text items, the bound is 8 MiB
        out = feed(conv, UserText(text=text))
        ids.append(out[0].item["id"])  # type: ignore[union-attr]

    def retrieve(item_id: str) -> dict[str, Any]:
        frame = orjson.dumps({"type": "conversation.item.retrieve", "item_id": item_id})
        _, out = conv.receive(frame, 0.0)
        return orjson.loads(encode_server_event(out[0]))  # type: ignore[no-any-return]

    assert retrieve(ids[0])["error"]["code"] == "invalid_value"  # forgotten
    assert retrieve(ids[-1])["item"]["content"][0]["text"] == text
    kept = [i for i in ids if retrieve(i)["type"] == "conversation.item.retrieved"]
    assert kept == ids[-len(kept):] and 6 <= len(kept) <= 8
