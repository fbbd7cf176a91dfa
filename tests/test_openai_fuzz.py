"""Fuzzing pivox.protocol.openai: any input decodes to an event or a ProtocolError, never raises.

Whatever decodes also survives encode → decode unchanged, in both dialects.
"""

from __future__ import annotations

import typing
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivox.core.errors import ProtocolError
from pivox.core.events import ClientEvent, ItemCreated, ServerEvent, Unknown
from pivox.protocol import openai as codec
from pivox.protocol.openai import (
    decode_client_event,
    decode_server_event,
    encode_client_event,
    encode_server_event,
)
from tests.test_openai import CLIENT_CASES, SERVER_CASES

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERVER_VARIANTS = tuple(typing.get_args(ServerEvent))
CLIENT_VARIANTS = tuple(typing.get_args(ClientEvent))

# Wire names and keys the codec knows, so generated objects reach the field checks.
SERVER_TYPES = sorted(codec._SERVER_DECODERS)
CLIENT_TYPES = sorted(codec._CLIENT_DECODERS)
KEYS = [
    "event_id",
    "response_id",
    "item_id",
    "output_index",
    "content_index",
    "delta",
    "text",
    "transcript",
    "call_id",
    "name",
    "arguments",
    "audio_start_ms",
    "audio_end_ms",
    "previous_item_id",
    "item",
    "response",
    "session",
    "error",
    "rate_limits",
    "audio",
    "type",
    "id",
    "status",
    "message",
    "code",
    "param",
    "limit",
    "remaining",
    "reset_seconds",
    "role",
    "content",
    "output",
    "input",
    "format",
    "rate",
    "turn_detection",
    "threshold",
    "eagerness",
    "transcription",
    "model",
    "voice",
    "tools",
    "modalities",
    "instructions",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "AAAA",
            "AAA=",
            "AA==",
            "QUJD",
            "",
            "audio/pcm",
            "server_vad",
            "realtime",
            "message",
            "user",
            "input_text",
            "function_call_output",
            "pcm16",
        ]
    )
    | st.sampled_from([*SERVER_TYPES, *CLIENT_TYPES])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=25,
)


def _event_objects(types: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with a known `type` and known keys holding arbitrary JSON values."""
    return st.builds(
        lambda t, rest: {**rest, "type": t},
        st.sampled_from(types),
        st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8),
    )


def _check_server(result: object) -> None:
    assert isinstance(result, (*SERVER_VARIANTS, ProtocolError)), result
    if isinstance(result, ProtocolError):
        assert result.message
        return
    for dialect in ("ga", "beta"):
        again = decode_server_event(encode_server_event(result, dialect))  # type: ignore[arg-type]
        if dialect == "beta" and isinstance(result, ItemCreated) and result.done:
            again = ItemCreated(  # beta has no item.done (documented)
                event_id=again.event_id,
                item=again.item,  # type: ignore[union-attr]
                previous_item_id=again.previous_item_id,
                done=True,  # type: ignore[union-attr]
            )
        assert again == result


def _check_client(result: object) -> None:
    assert isinstance(result, (*CLIENT_VARIANTS, ProtocolError)), result
    if isinstance(result, ProtocolError):
        assert result.message
        return
    for dialect in ("ga", "beta"):
        assert decode_client_event(encode_client_event(result, dialect)) == result  # type: ignore[arg-type]


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes(frame: bytes) -> None:
    _check_server(decode_server_event(frame))
    _check_client(decode_client_event(frame))


@FUZZ
@given(st.text(max_size=200))
def test_any_text_including_lone_surrogates(frame: str) -> None:
    _check_server(decode_server_event(frame))
    _check_client(decode_client_event(frame))


@FUZZ
@given(json_values)
def test_any_json_value(value: Any) -> None:
    frame = orjson.dumps(value)
    _check_server(decode_server_event(frame))
    _check_client(decode_client_event(memoryview(frame)))


@FUZZ
@given(_event_objects(SERVER_TYPES))
def test_server_shaped_objects(obj: dict[str, Any]) -> None:
    result = decode_server_event(orjson.dumps(obj))
    _check_server(result)
    assert not isinstance(result, Unknown)  # every type drawn here is a known one


@FUZZ
@given(_event_objects(CLIENT_TYPES))
def test_client_shaped_objects(obj: dict[str, Any]) -> None:
    _check_client(decode_client_event(orjson.dumps(obj)))


@FUZZ
@given(st.binary(min_size=1, max_size=200), st.integers(min_value=0))
def test_corrupted_valid_frames(noise: bytes, at: int) -> None:
    frame = bytearray(
        b'{"type":"response.output_audio.delta","event_id":"e","response_id":"r",'
        b'"item_id":"i","output_index":0,"content_index":0,"delta":"AAECAwQF"}'
    )
    at %= len(frame)
    frame[at : at + len(noise)] = noise
    _check_server(decode_server_event(frame))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    found = []
    for key, child in items:
        found.append((*path, key))
        if isinstance(child, (dict, list)):
            found += _paths(child, (*path, key))
    return found


def _replaced(frame: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copy = orjson.loads(orjson.dumps(frame))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy  # type: ignore[no-any-return]


SERVER_FRAMES = [c.frame(d) for c in SERVER_CASES for d in ("ga", "beta")]
CLIENT_FRAMES = [f for c in CLIENT_CASES for f in (c.ga, c.beta)]


@st.composite
def _one_value_replaced(draw: st.DrawFn, frames: list[dict[str, Any]]) -> dict[str, Any]:
    frame = draw(st.sampled_from(frames))
    paths = [p for p in _paths(frame) if p != ("type",)]
    if not paths:
        return frame
    return _replaced(frame, draw(st.sampled_from(paths)), draw(json_values))


@FUZZ
@given(_one_value_replaced(SERVER_FRAMES))
def test_valid_server_frames_with_one_value_replaced(frame: dict[str, Any]) -> None:
    _check_server(decode_server_event(orjson.dumps(frame)))


@FUZZ
@given(_one_value_replaced(CLIENT_FRAMES))
def test_valid_client_frames_with_one_value_replaced(frame: dict[str, Any]) -> None:
    _check_client(decode_client_event(orjson.dumps(frame)))
