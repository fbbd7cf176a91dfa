"""The `openai` SDK's Realtime models as a strict check of what a peer sends.

`server_event_model(frame, dialect)` validates one server frame against the SDK's model for
its wire `type` (GA `openai.types.realtime`, beta `openai.types.beta.realtime`) in pydantic's
strict mode and refuses keys the SDK does not know (its models keep extras silently).
`unknown_keys(model)` lists such keys. The exceptions, `CLOUD_EXTRAS`, are keys the API
reference documents and the SDK's models lack.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, get_args, get_origin

import openai.types.beta.realtime as beta
import openai.types.realtime as ga
import orjson
import pydantic

Dialect = Literal["ga", "beta"]
# Keys the API reference documents that the SDK's models lack: the GA session's id and
# object (session.created/updated examples), the function name on arguments.done.
CLOUD_EXTRAS: dict[str, frozenset[str]] = {
    "session.created": frozenset({".session.id", ".session.object"}),
    "session.updated": frozenset({".session.id", ".session.object"}),
    "response.function_call_arguments.done": frozenset({".name"}),
}


def unknown_keys(value: Any, path: str = "") -> list[str]:
    """Every key the SDK model tree kept as an extra: the SDK models allow extras silently."""
    if isinstance(value, pydantic.BaseModel):
        found = [f"{path}.{key}" for key in value.model_extra or {}]
        for name in type(value).model_fields:
            found += unknown_keys(getattr(value, name), f"{path}.{name}")
        return found
    if isinstance(value, list):
        return [k for i, v in enumerate(value) for k in unknown_keys(v, f"{path}[{i}]")]
    return []


def _members(union: Any) -> list[type[pydantic.BaseModel]]:
    origin = get_origin(union)
    if origin is Annotated:
        return _members(get_args(union)[0])
    if origin is Union:
        return [m for arg in get_args(union) for m in _members(arg)]
    return [union]


def _by_type(union: Any) -> dict[str, type[pydantic.BaseModel]]:
    """Wire `type` -> the SDK model of that event, from the SDK's own server event union."""
    models: dict[str, type[pydantic.BaseModel]] = {}
    for model in _members(union):
        for wire_type in get_args(model.model_fields["type"].annotation):
            assert wire_type not in models, f"two SDK models for {wire_type}"
            models[wire_type] = model
    return models


SERVER_MODELS: dict[Dialect, dict[str, type[pydantic.BaseModel]]] = {
    "ga": _by_type(ga.RealtimeServerEvent),
    "beta": _by_type(beta.RealtimeServerEvent),
}


def server_event_model(frame: str | bytes | dict[str, Any], dialect: Dialect) -> pydantic.BaseModel:
    """`frame` as the SDK's model for its type, strict, with no key the SDK does not know."""
    obj = frame if isinstance(frame, dict) else orjson.loads(frame)
    model_cls = SERVER_MODELS[dialect].get(obj.get("type"))
    assert model_cls is not None, f"no {dialect} SDK model for server event {obj.get('type')!r}"
    model = model_cls.model_validate(obj, strict=True)
    allowed = CLOUD_EXTRAS.get(obj["type"], frozenset())
    extra = [key for key in unknown_keys(model) if key not in allowed]
    assert extra == [], f"{obj['type']}: keys unknown to the SDK: {extra}"
    return model
