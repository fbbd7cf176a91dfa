"""Home Assistant discovery payloads and topics (pure)."""

from __future__ import annotations

from pivox.config import WAKE_WORDS
from pivox.control.discovery import (
    COMMAND_TOPICS,
    EVENT_TYPES,
    Topics,
    device_id_from,
    discovery_messages,
)

TOPICS = Topics(base="pivox", device_id="abc", discovery_prefix="homeassistant")


def test_device_id_is_stable_and_not_the_machine_id() -> None:
    machine = "0123456789abcdef0123456789abcdef\n"
    assert device_id_from(machine) == device_id_from(machine.strip())
    assert len(device_id_from(machine)) == 12 and device_id_from(machine) not in machine
    assert device_id_from(machine) != device_id_from("f" * 32)


def test_command_topics_of_the_device_and_of_all() -> None:
    assert TOPICS.command_of("pivox/abc/mute") == "mute"
    assert TOPICS.command_of("pivox/all/announce") == "say"
    assert TOPICS.command_of("pivox/other/mute") is None
    assert TOPICS.command_of("pivox/abc/status") is None
    assert TOPICS.command_of("pivox/abc/x/mute") is None
    subs = TOPICS.subscriptions()
    assert len(subs) == 2 * len(COMMAND_TOPICS) + 1 and "homeassistant/status" in subs


def test_every_entity_has_ids_availability_device_and_origin() -> None:
    messages = discovery_messages(TOPICS, name="Kitchen", version="9.9", wake_words=WAKE_WORDS)
    assert len(messages) == 12
    uniques = {m["unique_id"] for m in messages.values()}
    assert len(uniques) == 12
    for topic, payload in messages.items():
        component = topic.split("/")[1]
        assert payload["default_entity_id"] == f"{component}.{payload['unique_id']}"
        assert "object_id" not in payload
        assert payload["availability_topic"] == "pivox/abc/availability"
        assert payload["device"]["name"] == "Kitchen"
        assert payload["origin"] == {"name": "pivox", "sw_version": "9.9",
                                     "support_url": "https://github.com/pivox/pivox"}
    event = messages["homeassistant/event/abc/events/config"]
    assert event["event_types"] == list(EVENT_TYPES)
    assert messages["homeassistant/switch/abc/mute/config"]["command_topic"] == "pivox/abc/mute"
