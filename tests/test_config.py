"""pivox.config: the TOML schema, its errors, overrides, and the surfaces derived from it."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivox.config import (
    OVERRIDE_SOURCE,
    Config,
    LedSettings,
    McpServerSettings,
    config_change,
    config_table_markdown,
    load_config,
)
from pivox.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

ALL_KEYS = [
    f"{section.name}.{f.name}"
    for section in dataclasses.fields(Config)
    for f in dataclasses.fields(section.default_factory())  # type: ignore[misc]
]

# Every default the brief asks for, written out independently of the dataclasses.
DEFAULTS = {
    "server.provider": "openai",
    "gemini.url": (
        "wss://generativelanguage.googleapis.com/ws/"
        "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    ),
    "gemini.model": "models/gemini-live-2.5-flash-preview",
    "gemini.voice": "Puck",
    "gemini.auth_style": "header",
    "gemini.reconnect_after_s": 540.0,
    "server.url": "wss://api.openai.com/v1/realtime",
    "server.model": "gpt-realtime",
    "server.dialect": "ga",
    "server.auth_style": "bearer",
    "server.api_key_env": "OPENAI_API_KEY",
    "server.api_key_file": "",
    "server.credential": "openai_api_key",
    "server.allow_insecure": False,
    "server.ping_interval_s": 10.0,
    "server.ping_timeout_s": 10.0,
    "server.connect_timeout_s": 10.0,
    "server.reconnect_max_s": 30.0,
    "server.auth_retry_s": 300.0,
    "session.mode": "always_on",
    "session.wake_word": ("okay_nabu",),
    "session.wake_cutoff": 0.0,
    "session.wake_listen_s": 8.0,
    "session.follow_up_s": 5.0,
    "session.wake_earcon": False,
    "session.instructions": (
        "You are a helpful voice assistant on a smart speaker. Keep answers short."
    ),
    "session.voice": "alloy",
    "session.transcription_model": "",
    "session.vad_threshold": 0.5,
    "session.vad_prefix_padding_ms": 300,
    "session.vad_silence_duration_ms": 500,
    "session.response_timeout_s": 30.0,
    "session.tools": ("get_time", "set_volume", "mute", "set_timer", "cancel_timer",
                      "list_timers", "set_alarm", "cancel_alarm", "list_alarms", "snooze",
                      "stop_ringing"),
    "audio.input_device": "",
    "audio.output_device": "",
    "audio.ring_ms": 10000,
    "audio.max_reply_s": 300,
    "audio.preroll_ms": 500,
    "audio.frame_ms": 20,
    "audio.volume": 100,
    "audio.latency_ms": 40,
    "audio.echo_cancellation": True,
    "audio.noise_suppression": False,
    "button.enabled": True,
    "button.pin": 17,
    "button.pull": "up",
    "button.active_low": True,
    "button.debounce_ms": 30,
    "button.min_hold_ms": 250,
    "button.double_tap_ms": 400,
    "button.long_press_ms": 2000,
    "button.double_tap_action": "none",
    "led.enabled": True,
    "led.pin": 18,
    "led.rgb_pins": (),
    "led.pwm_hz": 200,
    "led.patterns": {},
    "log.level": "info",
    "log.journal": "auto",
    "timers.state_dir": "",
    "timers.timezone": "",
    "timers.missed_ring_s": 600.0,
    "timers.max_ring_s": 600.0,
    "mcp.servers": (),
    "control.socket": "auto",
    "mqtt.host": "",
    "mqtt.port": 1883,
    "mqtt.tls": False,
    "mqtt.ca_file": "",
    "mqtt.username": "",
    "mqtt.password_credential": "mqtt_password",
    "mqtt.password_env": "PIVOX_MQTT_PASSWORD",
    "mqtt.password_file": "",
    "mqtt.discovery_prefix": "homeassistant",
    "mqtt.base_topic": "pivox",
    "mqtt.device_id": "",
    "mqtt.name": "pivox",
    "mqtt.keepalive_s": 30,
}

# For every key: TOML values it must refuse, and (value, what it loads as) it must accept.
BAD: dict[str, list[str]] = {
    "server.provider": ['"google"', '"OpenAI"', "1"],
    "gemini.url": ['"https://example.com"', '""'],
    "gemini.model": ['""', "1"],
    "gemini.voice": ['""', "true"],
    "gemini.auth_style": ['"bearer"', '"key"'],
    "gemini.reconnect_after_s": ["-1", "86401", '"10"'],
    "server.url": ['"http://example.com"', '"wss://"', '""', "1", '"ws://10.0.0.2/"'],
    "server.model": ["1", "true"],
    "server.dialect": ['"GA"', '"v1"', "1"],
    "server.auth_style": ['"basic"', "true"],
    "server.api_key_env": ["1"],
    "server.api_key_file": ["[]"],
    "server.credential": ["1.0", '"../x"', '"/etc/hostname"'],
    "server.allow_insecure": ['"yes"', "1"],
    "server.ping_interval_s": ["0.5", "601", '"10"', "true", "nan"],
    "server.ping_timeout_s": ["0", "601.0"],
    "server.connect_timeout_s": ["0.9", "301"],
    "server.reconnect_max_s": ["0", "3601"],
    "server.auth_retry_s": ["9.9", "86401", "inf"],
    "session.mode": ['"always-on"', '"ptt"', '"wakeword"'],
    "session.wake_word": ['"okay nabu"', '"hey_google"', "1", '["alexa", "alexa"]',
                          '["alexa", "okay_nabu", "hey_jarvis"]', "[]", '"/etc/hostname"'],
    "session.wake_cutoff": ["-0.1", "1.0", '"high"'],
    "session.wake_listen_s": ["0.5", "61", '"8"'],
    "session.follow_up_s": ["-0.1", "60.5", "true"],
    "session.wake_earcon": ['"yes"', "1"],
    "session.instructions": ["1", "[]", '"' + 'x' * 65537 + '"'],
    "session.voice": ['""', "1"],
    "session.transcription_model": ["false"],
    "session.vad_threshold": ["-0.1", "1.01", '"0.5"'],
    "session.vad_prefix_padding_ms": ["-1", "5001", "300.0"],
    "session.vad_silence_duration_ms": ["-1", "10001", "0.5"],
    "session.response_timeout_s": ["0.5", "601", "\"soon\"", "true"],
    "session.tools": ['["get_time", "get_time"]', '["weather"]', '"get_time"', "[1]"],
    "audio.input_device": ["-1", "1.5", "true", "[0]"],
    "audio.output_device": ["-2", "{}"],
    "audio.ring_ms": ['"abc"', "199", "60001", "1e4"],
    "audio.max_reply_s": ["9", "3601", '"long"'],
    "audio.preroll_ms": ["-1", "5001"],
    "audio.frame_ms": ["9", "101"],
    "audio.volume": ["-1", "101", "true"],
    "audio.latency_ms": ["0", "1001"],
    "audio.echo_cancellation": ['"on"', "1"],
    "audio.noise_suppression": ['"no"'],
    "button.enabled": ['"yes"', "1"],
    "button.pin": ["-1", "28", "true"],
    "button.pull": ['"pullup"', '"UP"'],
    "button.active_low": ["0"],
    "button.debounce_ms": ["-1", "1001"],
    "button.min_hold_ms": ["-1", "5001"],
    "button.double_tap_ms": ["-1", "2001"],
    "button.long_press_ms": ["99", "30001"],
    "button.double_tap_action": ['"stop"', '""'],
    "led.enabled": ['"no"'],
    "led.pin": ["28", "-1"],
    "led.rgb_pins": ["[1, 2]", "[1, 2, 3, 4]", "[1, 1, 2]", "[1, 2, 28]", '["1", "2", "3"]'],
    "led.pwm_hz": ["9", "10001"],
    "led.patterns": ['"solid"', '["solid"]'],
    "log.level": ['"verbose"', '"INFO"'],
    "log.journal": ["true", '"yes"'],
    "timers.state_dir": ["1", "[]"],
    "timers.timezone": ['"Mars/Olympus"', '"../etc/passwd"', "1"],
    "timers.missed_ring_s": ["-1", "86401", '"600"'],
    "timers.max_ring_s": ["4", "3601"],
    "mcp.servers": ["3", '"home"', '[{ name = "a", url = "https://a/" }, '
                    '{ name = "a", url = "https://b/" }]'],
    "control.socket": ["1", '"' + "x" * 101 + '"'],
    "mqtt.host": ["1"],
    "mqtt.port": ["0", "65536", '"1883"'],
    "mqtt.ca_file": ["true"],
    "mqtt.username": ["1"],
    "mqtt.password_env": ["1"],
    "mqtt.password_file": ["[]"],
    "mqtt.tls": ['"yes"'],
    "mqtt.password_credential": ['"/etc/pw"', '".."'],
    "mqtt.discovery_prefix": ['""', '"ha/#"', '"a//b"', '"/ha"', '"+"'],
    "mqtt.base_topic": ['""', '"pivox/+"', '"pivox/"'],
    "mqtt.device_id": ['"kitchen speaker"', '"a/b"', '"' + "x" * 65 + '"'],
    "mqtt.name": ['""', "1"],
    "mqtt.keepalive_s": ["1", "601"],
}
GOOD: dict[str, list[tuple[str, object]]] = {
    "server.provider": [('"gemini"', "gemini")],
    "gemini.auth_style": [('"query"', "query")],
    "gemini.reconnect_after_s": [("0", 0.0)],
    "server.url": [
        ('"ws://127.0.0.1:8765/v1/realtime?x=1"', "ws://127.0.0.1:8765/v1/realtime?x=1")
    ],
    "server.model": [('""', "")],
    "server.dialect": [('"beta"', "beta")],
    "server.auth_style": [('"api-key"', "api-key")],
    "server.ping_interval_s": [("1", 1.0), ("600.0", 600.0)],
    "server.auth_retry_s": [("10", 10.0), ("86400", 86400.0)],
    "session.mode": [('"push_to_talk"', "push_to_talk"), ('"wake_word"', "wake_word")],
    "session.wake_word": [('"hey_jarvis"', ("hey_jarvis",)), ('"alexa"', ("alexa",)),
                          ('["alexa", "okay_nabu"]', ("alexa", "okay_nabu"))],
    "session.follow_up_s": [("0", 0.0), ("60", 60.0)],
    "session.wake_cutoff": [("0.93", 0.93), ("0", 0.0)],
    "session.vad_threshold": [("0", 0.0), ("1", 1.0)],
    "session.tools": [("[]", ()), ('["mute"]', ("mute",))],
    "audio.input_device": [("3", 3), ('"3"', 3), ('"USB Audio"', "USB Audio"), ('""', "")],
    "audio.ring_ms": [("200", 200), ("60000", 60000)],
    "audio.max_reply_s": [("10", 10), ("3600", 3600)],
    "audio.volume": [("0", 0)],
    "button.enabled": [("false", False)],
    "button.pin": [("0", 0), ("27", 27)],
    "button.pull": [('"off"', "off")],
    "button.double_tap_action": [('"repeat"', "repeat")],
    "led.rgb_pins": [("[5, 6, 13]", (5, 6, 13))],
    "led.patterns": [
        ('{ idle = "dim", offline = "blink:2" }', {"idle": "dim", "offline": "blink:2"}),
        ('{ thinking = "pulse:0.5@#ff8800" }', {"thinking": "pulse:0.5@#ff8800"}),
        (
            '{ speaking = "solid@#00FF00", muted = "off" }',
            {"speaking": "solid@#00FF00", "muted": "off"},
        ),
    ],
    "log.level": [('"debug"', "debug")],
    "log.journal": [('"off"', "off")],
    "timers.timezone": [('"Europe/Berlin"', "Europe/Berlin"), ('"UTC"', "UTC")],
    "timers.missed_ring_s": [("0", 0.0)],
    "control.socket": [('""', ""), ('"/tmp/p.sock"', "/tmp/p.sock")],
    "mqtt.host": [('"127.0.0.1"', "127.0.0.1")],
    "mqtt.discovery_prefix": [('"ha/discovery"', "ha/discovery")],
    "mqtt.device_id": [('"kitchen-1"', "kitchen-1")],
}


def value_of(config: Config, key: str) -> object:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pivox.toml"
    path.write_text(text)
    return path


def error_of(path: Path, text: str) -> ConfigError:
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value


# --------------------------------------------------------------------------- defaults


def test_no_file_means_every_default() -> None:
    config = load_config(None)
    assert config == Config()
    assert {key: value_of(config, key) for key in ALL_KEYS} == DEFAULTS


def test_config_and_sections_are_frozen() -> None:
    config = load_config(None, ['led.patterns={ idle = "dim" }'])
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.audio = config.audio  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.audio.volume = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.led.patterns["idle"] = "off"  # type: ignore[index]


def test_a_config_hashes_copies_and_pickles() -> None:
    config = load_config(None, ['led.patterns={ idle = "dim" }', "led.rgb_pins=[5, 6, 13]"])
    for twin in (copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert twin == config
        assert hash(twin) == hash(config)
    assert config != Config()


def test_an_empty_file_and_empty_sections_are_all_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == Config()
    sections = "".join(
        f"[{s}]\n" for s in ("server", "gemini", "session", "audio", "button", "led", "log"))
    assert load_config(write(tmp_path, sections)) == Config()


def test_a_file_sets_only_what_it_names(tmp_path: Path) -> None:
    path = write(tmp_path, '[audio]\nvolume = 40\n[server]\ndialect = "beta"\n')
    config = load_config(path)
    assert config.audio.volume == 40
    assert config.server.dialect == "beta"
    assert (
        dataclasses.replace(
            config,
            audio=dataclasses.replace(config.audio, volume=100),
            server=dataclasses.replace(config.server, dialect="ga"),
        )
        == Config()
    )


def test_dotted_keys_are_the_same_as_sections(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "audio.volume = 7\n")).audio.volume == 7


# --------------------------------------------------------------------------- every key


def test_the_case_tables_cover_every_key() -> None:
    assert sorted(DEFAULTS) == sorted(ALL_KEYS)
    assert sorted(BAD) == sorted(ALL_KEYS)
    assert set(GOOD) <= set(ALL_KEYS)


@pytest.mark.parametrize("key", ALL_KEYS)
def test_a_value_of_the_wrong_type_names_file_and_key(tmp_path: Path, key: str) -> None:
    section, name = key.split(".")
    path = tmp_path / "pivox.toml"
    error = error_of(path, f"[{section}]\n{name} = 1979-05-27T07:32:00Z\n")
    assert (error.path, error.key) == (str(path), key)
    assert str(error).startswith(f"{path}: {key}: expected ")
    assert str(error).endswith('got "1979-05-27 07:32:00+00:00"')


@pytest.mark.parametrize(("key", "text"), [(k, v) for k, vs in BAD.items() for v in vs])
def test_every_bad_value_names_file_key_and_expectation(
    tmp_path: Path, key: str, text: str
) -> None:
    section, name = key.split(".")
    path = tmp_path / "pivox.toml"
    error = error_of(path, f"[{section}]\n{name} = {text}\n")
    assert error.path == str(path)
    assert error.key == key
    assert re.fullmatch(
        rf"{re.escape(str(path))}: {re.escape(key)}: expected .+, got .+", str(error)
    )


@pytest.mark.parametrize(
    ("key", "text", "value"), [(k, t, v) for k, cases in GOOD.items() for t, v in cases]
)
def test_good_values_load(tmp_path: Path, key: str, text: str, value: object) -> None:
    section, name = key.split(".")
    assert value_of(load_config(write(tmp_path, f"[{section}]\n{name} = {text}\n")), key) == value


def test_a_wake_word_model_is_a_built_in_name_or_a_json_path(tmp_path: Path) -> None:
    model = tmp_path / "kitchen.json"  # read when it loads (tests/test_wake.py)
    config = load_config(None, [f'session.wake_word=["alexa", "{model}"]'])
    assert config.session.wake_word == ("alexa", str(model))


def test_the_brief_example_message(tmp_path: Path) -> None:
    path = tmp_path / "pivox.toml"
    error = error_of(path, '[audio]\nring_ms = "abc"\n')
    assert (
        str(error) == f'{path}: audio.ring_ms: expected an integer between 200 and 60000, got "abc"'
    )


def test_choice_errors_list_choices_and_suggest(tmp_path: Path) -> None:
    error = error_of(tmp_path / "c.toml", '[server]\ndialect = "gaa"\n')
    assert error.message == 'expected one of "ga", "beta", got "gaa" (did you mean "ga"?)'
    error = error_of(tmp_path / "c.toml", '[session]\ntools = ["get_time", "mutee"]\n')
    assert '"get_time", "set_volume", "mute"' in error.message
    assert error.message.endswith('(did you mean "mute"?)')


def test_integers_are_not_floats_but_floats_take_integers(tmp_path: Path) -> None:
    assert (
        load_config(write(tmp_path, "[server]\nreconnect_max_s = 5\n")).server.reconnect_max_s
        == 5.0
    )
    assert isinstance(
        load_config(write(tmp_path, "[server]\nreconnect_max_s = 5\n")).server.reconnect_max_s,
        float,
    )
    error = error_of(tmp_path / "c.toml", "[audio]\nvolume = 50.0\n")
    assert error.message == "expected an integer between 0 and 100, got 50.0"


# --------------------------------------------------------------------------- led patterns


@pytest.mark.parametrize(
    "pattern",
    [
        "off",
        "dim",
        "solid",
        "blink",
        "blink:2",
        "blink:0.25",
        "pulse:.5",
        "pulse:3.",
        "off@#000000",
    ],
)
def test_led_patterns_accepted(pattern: str) -> None:
    config = load_config(None, [f'led.patterns={{ idle = "{pattern}" }}'])
    assert config.led.patterns == {"idle": pattern}


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "blnk",
        "blink:0",
        "blink:-1",
        "blink:x",
        "solid:2",
        "pulse:1@ff8800",
        "pulse:1@#ff88",
        "dim@#ggg000",
        " solid",
        "SOLID",
    ],
)
def test_led_patterns_refused_name_the_state(pattern: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, [f'led.patterns={{ muted = "{pattern}" }}'])
    assert caught.value.key == "led.patterns.muted"
    assert caught.value.path == OVERRIDE_SOURCE
    assert "expected a pattern like" in caught.value.message


def test_led_pattern_of_an_unknown_state_suggests_one(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    error = error_of(path, '[led.patterns]\nidel = "solid"\n')
    assert (error.path, error.key) == (str(path), "led.patterns.idel")
    assert error.message.endswith('got "idel" (did you mean "idle"?)')


def test_every_state_takes_a_pattern(tmp_path: Path) -> None:
    states = [
        *("booting", "connecting", "idle", "listening", "user_speaking", "thinking"),
        *("speaking", "muted", "offline", "auth_error", "audio_error"),
    ]
    body = "".join(f'{state} = "blink:{i + 1}"\n' for i, state in enumerate(states))
    config = load_config(write(tmp_path, f"[led.patterns]\n{body}"))
    assert config.led.patterns == {state: f"blink:{i + 1}" for i, state in enumerate(states)}
    assert isinstance(config.led, LedSettings)


# --------------------------------------------------------------------------- structure errors


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    error = error_of(path, "[audio]\nring_mss = 300\n")
    assert str(error) == f'{path}: audio.ring_mss: unknown key (did you mean "ring_ms"?)'


def test_unknown_key_without_a_close_match_lists_the_section(tmp_path: Path) -> None:
    error = error_of(tmp_path / "c.toml", "[log]\nzzz = 1\n")
    assert error.key == "log.zzz"
    assert error.message == "unknown key; [log] has level, journal"


def test_a_key_in_the_wrong_section_says_where_it_belongs(tmp_path: Path) -> None:
    error = error_of(tmp_path / "c.toml", '[audio]\npull = "up"\n')
    assert (error.key, error.message) == ("audio.pull", "unknown key (it belongs under [button])")
    error = error_of(tmp_path / "c.toml", "volume = 3\n")
    assert (error.key, error.message) == ("volume", "unknown section (it belongs under [audio])")


def test_unknown_section_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    error = error_of(path, "[auido]\nvolume = 3\n")
    assert str(error) == f'{path}: auido: unknown section (did you mean "audio"?)'
    error = error_of(path, "[network]\n")
    assert (error.key, error.message) == ("network", "unknown section")


def test_a_section_that_is_not_a_table(tmp_path: Path) -> None:
    error = error_of(tmp_path / "c.toml", "audio = 3\n")
    assert (error.key, error.message) == ("audio", "expected a table, got 3")


def test_a_sub_table_of_a_scalar_key_is_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path / "c.toml", "[audio.volume]\nx = 1\n")
    assert error.key == "audio.volume"
    assert error.message == 'expected an integer between 0 and 100, got {"x": 1}'


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    error = error_of(path, "[audio]\nvolume = 3\nring_ms = \n")
    assert error.path == str(path)
    assert error.key is None
    assert str(error).startswith(f"{path}: invalid TOML: ")
    assert "line 3" in str(error)


def test_a_duplicate_key_is_a_syntax_error(tmp_path: Path) -> None:
    error = error_of(tmp_path / "c.toml", "[audio]\nvolume = 3\nvolume = 4\n")
    assert "line 3" in error.message


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"[audio]\n# caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (caught.value.path, caught.value.message) == (str(path), "not UTF-8 text (at line 2)")


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: no such file"


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == f"{tmp_path}: cannot read: Is a directory"


# --------------------------------------------------------------------------- overrides


def test_overrides_win_over_the_file_and_the_last_wins(tmp_path: Path) -> None:
    path = write(tmp_path, "[audio]\nvolume = 40\nring_ms = 500\n")
    config = load_config(path, ["audio.volume=60", "audio.volume = 70"])
    assert (config.audio.volume, config.audio.ring_ms) == (70, 500)


def test_override_values_are_toml_else_bare_strings() -> None:
    config = load_config(
        None,
        [
            "button.enabled=false",
            "server.reconnect_max_s=12",
            'session.tools=["mute"]',
            "server.url=ws://127.0.0.1:9000/v1/realtime",
            "session.instructions=Be brief = be kind.",
            'session.voice="true"',
            "session.transcription_model=1.5",
            'log.level="debug"',
            "audio.input_device=USB Audio Device",
            "audio.output_device=2",
        ],
    )
    assert config.button.enabled is False
    assert config.server.reconnect_max_s == 12.0
    assert config.session.tools == ("mute",)
    assert config.server.url == "ws://127.0.0.1:9000/v1/realtime"
    assert config.session.instructions == "Be brief = be kind."
    assert config.session.voice == "true"  # a string setting takes the text as given
    assert config.session.transcription_model == "1.5"
    assert config.log.level == "debug"
    assert config.audio.input_device == "USB Audio Device"
    assert config.audio.output_device == 2


def test_an_override_cannot_smuggle_in_more_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, ['audio.volume=3\nx = "y"'])
    assert caught.value.message == 'expected an integer between 0 and 100, got "3\\nx = \\"y\\""'
    config = load_config(None, ['session.instructions=hi\nvoice = "x"'])
    assert config.session.instructions == 'hi\nvoice = "x"'
    assert config.session.voice == "alloy"


def test_override_errors_name_set_as_the_file() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["audio.ring_ms=abc"])
    assert str(caught.value) == (
        '--set: audio.ring_ms: expected an integer between 200 and 60000, got "abc"'
    )


def test_an_override_error_wins_over_a_good_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "[audio]\nvolume = 40\n"), ["audio.volume=400"])
    assert (caught.value.path, caught.value.key) == (OVERRIDE_SOURCE, "audio.volume")


def test_a_bad_file_value_is_reported_even_when_overridden_later(tmp_path: Path) -> None:
    path = write(tmp_path, "[audio]\nbogus = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["audio.volume=4"])
    assert (caught.value.path, caught.value.key) == (str(path), "audio.bogus")


def test_an_override_replaces_a_bad_file_value(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[audio]\nvolume = 400\n"), ["audio.volume=4"])
    assert config.audio.volume == 4


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("audio.volume", None, 'expected section.key=value, got "audio.volume"'),
        ("volume=3", None, 'expected section.key=value, got "volume=3"'),
        ("audio.vollume=3", "audio.vollume", 'unknown key (did you mean "volume"?)'),
        ("audoi.volume=3", "audoi.volume", 'unknown section (did you mean "audio"?)'),
        ("audio.volume.x=3", "audio.volume.x", 'unknown key (did you mean "volume"?)'),
        ("log.zzz=3", "log.zzz", "unknown key; [log] has level, journal"),
    ],
)
def test_malformed_overrides(text: str, key: str | None, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, [text])
    assert (caught.value.path, caught.value.key, caught.value.message) == (
        OVERRIDE_SOURCE,
        key,
        message,
    )


# --------------------------------------------------------------------------- fuzzing


TOML_VALUES = st.recursive(
    st.sampled_from(["1979-05-27", "07:32:00", "{}", '{ idle = "dim" }', "nan", "-inf"])
    | st.booleans().map(lambda b: "true" if b else "false")
    | st.integers(-(2**64), 2**64).map(str)
    | st.floats().map(repr)
    | st.text(max_size=12).map(json.dumps),
    lambda inner: st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
    max_leaves=8,
)


@given(
    key=st.sampled_from(ALL_KEYS) | st.text(max_size=20), value=TOML_VALUES | st.text(max_size=20)
)
def test_any_override_is_accepted_or_a_config_error(key: str, value: str) -> None:
    try:
        config = load_config(None, [f"{key}={value}"])
    except ConfigError as error:
        assert error.path == OVERRIDE_SOURCE
    else:
        assert isinstance(config, Config)


@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_file_is_accepted_or_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "c.toml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as error:
        assert error.path == str(path)


# --------------------------------------------------------------------------- hostile values


def test_a_blink_rate_of_400_digits_is_refused_by_the_parser_the_led_uses(tmp_path: Path) -> None:
    path = write(tmp_path, f'[led]\npatterns = {{ idle = "blink:{"9" * 400}" }}\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.path == str(path) and error.value.key == "led.patterns.idle"


@pytest.mark.parametrize("depth", [400, 2000])
def test_toml_nested_deep_is_a_config_error_naming_the_file(tmp_path: Path, depth: int) -> None:
    path = write(tmp_path, f"[session]\ntools = {'[' * depth}{']' * depth}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.path == str(path)


def test_an_override_nested_deep_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, [f"session.tools={'[' * 2000}{']' * 2000}"])
    assert error.value.key == "session.tools"


@pytest.mark.parametrize("name", ["../x", "/etc/hostname", "a/b", "..", "."])
def test_a_credential_is_a_name_not_a_path(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f'[server]\ncredential = "{name}"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.key == "server.credential"


def test_twenty_megabytes_of_instructions_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f'[session]\ninstructions = "{"x" * 20_000_000}"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.key == "session.instructions" and len(str(error.value)) < 300


@pytest.mark.parametrize("section", ["server", "gemini"])
@pytest.mark.parametrize(
    "url", ["ws://192.168.1.20:8765/v1/realtime", "ws://example.com/v1/realtime"]
)
def test_a_cleartext_url_to_another_host_is_refused_unless_allowed(
    tmp_path: Path, url: str, section: str
) -> None:
    path = write(tmp_path, f'[{section}]\nurl = "{url}"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.path == str(path) and error.value.key == f"{section}.url"
    assert "allow_insecure" in str(error.value)
    allowed = load_config(path, ["server.allow_insecure=true"])
    assert getattr(allowed, section).url == url


@pytest.mark.parametrize(
    "url", ["ws://127.0.0.1:8765/v1/realtime", "ws://127.0.0.2/", "ws://localhost/",
            "ws://[::1]:80/", "wss://example.com/v1/realtime"]
)
def test_loopback_and_tls_urls_need_no_permission(url: str) -> None:
    assert load_config(None, [f"server.url={url}"]).server.url == url


# --------------------------------------------------------------------------- derived surfaces


def test_readme_holds_exactly_the_generated_table() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(
        r"<!-- config-table:start -->\n(.*)<!-- config-table:end -->", readme, re.DOTALL
    )
    assert match is not None, "README.md lacks the config-table markers"
    assert match[1] == config_table_markdown()


def test_the_table_has_one_row_per_key_in_order() -> None:
    rows = config_table_markdown().splitlines()[2:]
    server_keys = [f"mcp.servers[].{f.name}" for f in dataclasses.fields(McpServerSettings)]
    assert [row.split("`")[1] for row in rows] == ALL_KEYS + server_keys
    assert rows[ALL_KEYS.index("audio.ring_ms")] == (
        "| `audio.ring_ms` | integer | `10000` | Playback buffer for the model's audio, in ms. "
        "From 200 to 60000. |"
    )


def test_the_example_file_lists_every_key_at_its_default(tmp_path: Path) -> None:
    example = ROOT / "config" / "pivox.toml"
    # the one deliberate difference: the shipped file selects the wake word (README, "Modes")
    assert load_config(example) == load_config(None, ["session.mode=wake_word"])
    # commented-out keys ("#key = value" or "# key = value") count as listed
    uncommented = re.sub(r"(?m)^# ?(\w+ = )", r"\1", example.read_text())
    doc = tomllib.loads(uncommented)
    assert sorted(f"{s}.{k}" for s, table in doc.items() for k in table) == sorted(ALL_KEYS)
    assert load_config(write(tmp_path, uncommented)) == load_config(
        None, ["session.mode=wake_word"])


@pytest.mark.parametrize(("override", "redo"), [
    ("log.level=debug", set()),
    ("led.patterns={idle = \"off\"}", set()),
    ("session.voice=ash", {"session"}),
    ("server.url=ws://127.0.0.1:9/v1/realtime", {"session"}),
    ("session.mode=push_to_talk", {"machine", "session", "capture"}),
    ("button.double_tap_action=repeat", {"machine", "session"}),
    ("session.wake_word=alexa", {"session", "capture"}),
    ("audio.ring_ms=800", {"capture", "devices"}),
])
def test_a_reload_redoes_what_its_change_touches(override: str, redo: set[str]) -> None:
    old = load_config(None)
    change = config_change(old, load_config(None, [override]), key_changed=False)
    assert {name for name in ("machine", "session", "capture", "devices")
            if getattr(change, name)} == redo


def test_a_new_api_key_is_a_new_session() -> None:
    config = load_config(None)
    change = config_change(config, config, key_changed=True)
    assert (change.machine, change.session, change.capture, change.devices) == (
        False, True, False, False)


# --------------------------------------------------------------------------- [[mcp.servers]]

HOME = '[[mcp.servers]]\nname = "home"\nurl = "https://ha.lan:8123/api/mcp"\n'


def test_an_mcp_server_table_loads_with_its_defaults(tmp_path: Path) -> None:
    (server,) = load_config(write(tmp_path, HOME + 'token_env = "HA_TOKEN"\n')).mcp.servers
    assert server == McpServerSettings(name="home", url="https://ha.lan:8123/api/mcp",
                                       token_env="HA_TOKEN")
    assert (server.tools, server.timeout_s, server.allow_insecure) == (("*",), 10.0, False)


@pytest.mark.parametrize(("extra", "key", "message"), [
    ('nme = "x"\n', "mcp.servers[0].nme", 'got "nme" (did you mean "name"?)'),
    ("timeout_s = 0\n", "mcp.servers[0].timeout_s", "between 0.5 and 300.0"),
    ('tools = ["Hass*", ""]\n', "mcp.servers[0].tools", "non-empty glob patterns"),
    ('token_credential = "../t"\n', "mcp.servers[0].token_credential", "credential name"),
    ("allow_insecure = 1\n", "mcp.servers[0].allow_insecure", "true or false"),
    ('[[mcp.servers]]\nname = "b c"\nurl = "https://x/"\n', "mcp.servers[1].name",
     "letters, digits"),
    ('[[mcp.servers]]\nname = "d"\nurl = "ws://x/"\n', "mcp.servers[1].url",
     "http:// or https://"),
    ('[[mcp.servers]]\nname = "d"\n', "mcp.servers[1].url", "missing: this key is required"),
])
def test_bad_mcp_server_keys_name_the_entry_and_file(
    tmp_path: Path, extra: str, key: str, message: str
) -> None:
    path = tmp_path / "pivox.toml"
    error = error_of(path, HOME + extra)
    assert (error.path, error.key) == (str(path), key)
    assert message in str(error)


def test_cleartext_mcp_needs_loopback_or_permission(tmp_path: Path) -> None:
    path = tmp_path / "pivox.toml"
    lan = '[[mcp.servers]]\nname = "ha"\nurl = "http://192.168.1.5:8123/api/mcp"\n'
    error = error_of(path, lan)
    assert (error.path, error.key) == (str(path), "mcp.servers[0].url")
    assert "unencrypted" in str(error)
    assert load_config(write(tmp_path, lan + "allow_insecure = true\n")).mcp.servers[0].url
    local = '[[mcp.servers]]\nname = "ha"\nurl = "http://127.0.0.1:8123/api/mcp"\n'
    assert load_config(write(tmp_path, local)).mcp.servers[0].name == "ha"


def test_mcp_servers_by_override() -> None:
    config = load_config(None, ['mcp.servers=[{ name = "ha", url = "http://localhost/api/mcp",'
                                ' tools = ["Hass*"] }]'])
    assert config.mcp.servers[0].tools == ("Hass*",)
