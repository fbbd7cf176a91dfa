"""Home Assistant MQTT discovery: the device, its entities, and the topics they use (pure).

One device (`identifiers`, name, model, sw version) with an `origin`; each entity is one
retained config message on `<discovery_prefix>/<component>/<device_id>/<key>/config`,
carrying `unique_id`, `default_entity_id` (not the deprecated `object_id`), the availability
topic and the device. Every state lives in one JSON message on `<base>/<device_id>/status`,
published on change; entities read their field with a `value_template`. Commands arrive on
`<base>/<device_id>/<command>` and, for the whole household, `<base>/all/<command>`.

| entity | component | command topic | state |
|---|---|---|---|
| state | sensor (enum) | | device state |
| mute | switch | `mute` (ON/OFF) | muted |
| volume | number 0-100 | `volume` | volume |
| wake word | select | `wake_word` | the wake word |
| converse | button | `converse` | |
| stop | button | `stop` (ends a reply or a ringing timer) | |
| announce | notify | `announce` | |
| ask | text | `ask` | |
| next timer | sensor (timestamp) | | next_timer |
| last turn latency | sensor (ms) | | last_latency_ms |
| link | binary_sensor (connectivity) | | link |
| events | event: wake, turn_done, timer_rung, answer | | `<base>/<device_id>/event` |
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ORIGIN = {"name": "pivox", "support_url": "https://github.com/pivox/pivox"}
STATES = ("booting", "connecting", "idle", "listening", "user_speaking", "thinking",
          "speaking", "ringing", "muted", "offline", "auth_error", "audio_error")
EVENT_TYPES = ("wake", "turn_done", "timer_rung", "answer")
COMMAND_TOPICS: Mapping[str, str] = {
    "mute": "mute", "volume": "volume", "wake_word": "wake_word", "converse": "converse",
    "stop": "stop", "announce": "say", "ask": "ask",
}
"""Command topic name → the command model's name (commands.py)."""
ALL = "all"
"""The device id level that reaches every pivox on the broker."""


def device_id_from(machine_id: str) -> str:
    """A stable id for this device, derived from /etc/machine-id (never the id itself, as
    machine-id(5) asks of applications)."""
    return hashlib.sha256(f"pivox:{machine_id.strip()}".encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True, kw_only=True)
class Topics:
    """Every topic of one device."""

    base: str
    device_id: str
    discovery_prefix: str

    @property
    def availability(self) -> str:
        return f"{self.base}/{self.device_id}/availability"

    @property
    def status(self) -> str:
        return f"{self.base}/{self.device_id}/status"

    @property
    def event(self) -> str:
        return f"{self.base}/{self.device_id}/event"

    @property
    def birth(self) -> str:
        """Home Assistant's own status topic (`online` when it starts)."""
        return f"{self.discovery_prefix}/status"

    def command(self, name: str, device: str | None = None) -> str:
        return f"{self.base}/{device or self.device_id}/{name}"

    def subscriptions(self) -> list[str]:
        """The command topics of this device and of the household, and the birth topic."""
        return [self.command(name, device) for device in (self.device_id, ALL)
                for name in COMMAND_TOPICS] + [self.birth]

    def command_of(self, topic: str) -> str | None:
        """The command model name a topic carries, or None when it is none of ours."""
        head, _, name = topic.rpartition("/")
        if head not in (f"{self.base}/{self.device_id}", f"{self.base}/{ALL}"):
            return None
        return COMMAND_TOPICS.get(name)


def _field(name: str) -> str:
    return "{{ value_json.%s }}" % name  # noqa: UP031 (Jinja braces)


def _switch(name: str) -> str:
    return "{{ 'ON' if value_json.%s else 'OFF' }}" % name  # noqa: UP031


def discovery_messages(topics: Topics, *, name: str, version: str,
                       wake_words: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Config topic → config payload, for every entity of the device."""
    device = {"identifiers": [f"pivox_{topics.device_id}"], "name": name,
              "model": "pivox smart speaker", "manufacturer": "pivox", "sw_version": version}
    state = {"state_topic": topics.status}
    entities: dict[tuple[str, str], dict[str, Any]] = {
        ("sensor", "state"): {**state, "name": "State", "value_template": _field("state"),
                              "device_class": "enum", "options": list(STATES),
                              "icon": "mdi:speaker-message"},
        ("switch", "mute"): {**state, "name": "Microphone mute", "value_template":
                             _switch("muted"), "command_topic": topics.command("mute"),
                             "payload_on": "ON", "payload_off": "OFF",
                             "icon": "mdi:microphone-off"},
        ("number", "volume"): {**state, "name": "Volume", "value_template": _field("volume"),
                               "command_topic": topics.command("volume"), "min": 0, "max": 100,
                               "step": 1, "unit_of_measurement": "%", "icon": "mdi:volume-high"},
        ("select", "wake_word"): {**state, "name": "Wake word",
                                  "value_template": _field("wake_word"),
                                  "command_topic": topics.command("wake_word"),
                                  "options": list(wake_words)},
        ("button", "converse"): {"name": "Start conversation", "payload_press": "PRESS",
                                 "command_topic": topics.command("converse"),
                                 "icon": "mdi:account-voice"},
        ("button", "stop"): {"name": "Stop", "payload_press": "PRESS",
                             "command_topic": topics.command("stop"), "icon": "mdi:stop"},
        ("notify", "announce"): {"name": "Announce", "command_topic": topics.command("announce")},
        ("text", "ask"): {"name": "Ask", "command_topic": topics.command("ask"), "max": 255,
                          "icon": "mdi:chat-question"},
        ("sensor", "next_timer"): {**state, "name": "Next timer", "device_class": "timestamp",
                                   "value_template": _field("next_timer")},
        ("sensor", "latency"): {**state, "name": "Last turn latency",
                                "value_template": _field("last_latency_ms"),
                                "unit_of_measurement": "ms", "device_class": "duration",
                                "state_class": "measurement"},
        ("binary_sensor", "link"): {**state, "name": "Link", "device_class": "connectivity",
                                    "value_template": _switch("link"),
                                    "payload_on": "ON", "payload_off": "OFF"},
        ("event", "events"): {"name": "Events", "state_topic": topics.event,
                              "event_types": list(EVENT_TYPES)},
    }
    messages: dict[str, dict[str, Any]] = {}
    for (component, key), fields in entities.items():
        unique = f"pivox_{topics.device_id}_{key}"
        messages[f"{topics.discovery_prefix}/{component}/{topics.device_id}/{key}/config"] = {
            **fields, "unique_id": unique, "default_entity_id": f"{component}.{unique}",
            "availability_topic": topics.availability, "payload_available": "online",
            "payload_not_available": "offline", "device": device,
            "origin": {**ORIGIN, "sw_version": version},
        }
    return messages
