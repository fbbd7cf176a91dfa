"""The configuration: one TOML file parsed into one frozen, validated `Config`.

Every setting is a field of a section dataclass below, and its metadata (help text, range,
choices) drives the loader, the error messages, the `--set` overrides and the README table,
so no surface is kept in sync by hand. Every error is a `ConfigError` naming the file (or
`--set`) and the `section.key`, and saying what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import os
import re
import tomllib
import urllib.parse
import zoneinfo
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pivox.core.errors import ConfigError
from pivox.core.led import parse_pattern
from pivox.protocol import gemini

WAKE_WORDS = ("okay_nabu", "alexa", "hey_jarvis", "hey_mycroft")
"""The wake word models shipped in the pymicro-wakeword wheel, by config name."""
MAX_WAKE_WORDS = 2

OVERRIDE_SOURCE = "--set"
"""The `path` of a ConfigError raised by a `--set section.key=value` override."""

LED_STATES = (
    "booting",
    "connecting",
    "idle",
    "listening",
    "user_speaking",
    "thinking",
    "speaking",
    "muted",
    "offline",
    "auth_error",
    "audio_error",
    "ringing",
)
"""The device states an `[led] patterns` entry may name."""

TIMER_TOOLS = ("set_timer", "cancel_timer", "list_timers", "set_alarm", "cancel_alarm",
               "list_alarms", "snooze", "stop_ringing")
TOOL_NAMES = ("get_time", "set_volume", "mute", *TIMER_TOOLS)
"""The local tools `[session] tools` may enable."""

BCM_PINS = (0, 27)
"""The GPIO pins of the 40-pin header, by BCM number."""

MAX_INSTRUCTIONS_CHARS = 65536
"""Longest `session.instructions`: the whole `session.update` must fit one frame."""


def _is_led_pattern(text: str) -> bool:
    """What the LED will show, read by the one parser the daemon uses (led.parse_pattern)."""
    try:
        parse_pattern(text)
    except ValueError:
        return False
    return text == text.strip()


def _are_wake_words(entries: Sequence[str]) -> bool:
    """Up to MAX_WAKE_WORDS entries, each a built-in model or a `.json` path (the file is
    read when the model loads: a missing or broken one is a ConfigError naming it)."""
    return 0 < len(entries) <= MAX_WAKE_WORDS and all(
        entry in WAKE_WORDS or entry.endswith(".json") for entry in entries)


def _is_credential_name(text: str) -> bool:
    """A systemd credential is a file name inside $CREDENTIALS_DIRECTORY, never a path."""
    return text == "" or ("/" not in text and "\0" not in text and text not in (".", ".."))


def is_loopback(host: str) -> bool:
    """True for `localhost` and the loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_topic_level(text: str) -> bool:
    """An MQTT topic prefix pivox may publish under: no wildcards, no NUL, no empty level."""
    return 0 < len(text) <= 128 and not set(text) & set("+#\0") and "" not in text.split("/")


def _is_device_id(text: str) -> bool:
    """A device id fit for topics and Home Assistant unique ids (empty: from machine-id)."""
    return re.fullmatch(r"[A-Za-z0-9_-]{0,64}", text) is not None


def _is_ws_url(text: str) -> bool:
    return re.fullmatch(r"wss?://[^/\s?#]+\S*", text) is not None


def _is_http_url(text: str) -> bool:
    return re.fullmatch(r"https?://[^/\s?#]+\S*", text) is not None


def _is_server_name(text: str) -> bool:
    """A server name prefixes its tools' names (`<server>_<tool>`): the providers' charset."""
    return re.fullmatch(r"[A-Za-z0-9_-]{1,32}", text) is not None


def _are_globs(patterns: Sequence[str]) -> bool:
    """Glob patterns (fnmatch takes any string; an empty one would match nothing)."""
    return all(patterns)


class _FrozenTable(Mapping[str, str]):
    """An immutable, hashable table of strings, so a `Config` hashes, copies and pickles."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return repr(self._items)


# --------------------------------------------------------------------------- field metadata


@dataclass(frozen=True, slots=True)
class _Rule:
    """How one setting is described and checked beyond its type."""

    help: str
    range: tuple[int, int] | tuple[float, float] | None = None  # inclusive, numbers or items
    choices: tuple[str, ...] = ()  # allowed strings, list items, or table keys
    check: Callable[[Any], bool] | None = None  # on the converted value, or each table value
    expect: str = ""  # what `check` wants, for messages
    one_or_list: bool = False  # a list setting that also takes one bare item
    required: bool = False  # a key of a `[[table]]` entry that must be given


def _setting(default: Any, help: str, **rule: Any) -> Any:
    """A dataclass field carrying its `_Rule` in its metadata."""
    return field(default=default, metadata={"pivox": _Rule(help, **rule)})


_SECTION = dataclass(frozen=True, slots=True, kw_only=True)


@_SECTION
class ServerSettings:
    """`[server]`: where the realtime model lives and how to authenticate."""

    provider: str = _setting(
        "openai",
        "`openai`: OpenAI Realtime at `url`; `gemini`: Gemini Live as set in `[gemini]`.",
        choices=("openai", "gemini"),
    )
    url: str = _setting(
        "wss://api.openai.com/v1/realtime",
        "WebSocket URL of the realtime endpoint.",
        check=_is_ws_url,
        expect="a ws:// or wss:// URL",
    )
    model: str = _setting(
        "gpt-realtime", "Model, added to the URL as `model=` (empty: the URL names it)."
    )
    dialect: str = _setting(
        "ga", "Event names of the GA API or the older beta.", choices=("ga", "beta")
    )
    auth_style: str = _setting(
        "bearer",
        "`bearer` sends `Authorization: Bearer <key>`; `api-key` sends `api-key: <key>` (Azure).",
        choices=("bearer", "api-key"),
    )
    api_key_env: str = _setting(
        "OPENAI_API_KEY", "Environment variable holding the API key (empty: not read)."
    )
    api_key_file: str = _setting(
        "", "File holding the API key, mode 0600 or stricter (empty: none)."
    )
    credential: str = _setting(
        "openai_api_key",
        "systemd credential (`LoadCredential=`) holding the API key; read first. A name, "
        "not a path.",
        check=_is_credential_name,
        expect="a credential name (no '/', not '.' or '..')",
    )
    allow_insecure: bool = _setting(
        False,
        "Allow a `ws://` (cleartext) URL to a host that is not loopback: the key and the "
        "audio then cross the network unencrypted.",
    )
    ping_interval_s: float = _setting(10.0, "Seconds between keepalive pings.", range=(1.0, 600.0))
    ping_timeout_s: float = _setting(
        10.0, "Seconds to wait for a pong before dropping the link.", range=(1.0, 600.0)
    )
    connect_timeout_s: float = _setting(
        10.0, "Seconds allowed for connecting and the handshake.", range=(1.0, 300.0)
    )
    reconnect_max_s: float = _setting(
        30.0, "Longest wait between reconnection attempts.", range=(1.0, 3600.0)
    )
    auth_retry_s: float = _setting(
        300.0, "Wait before retrying after the server refused the key.", range=(10.0, 86400.0)
    )


@_SECTION
class GeminiSettings:
    """`[gemini]`: the Gemini Live endpoint, used when `server.provider` is `gemini`."""

    url: str = _setting(
        gemini.DEFAULT_URL,
        "WebSocket URL of the BidiGenerateContent endpoint.",
        check=_is_ws_url,
        expect="a ws:// or wss:// URL",
    )
    model: str = _setting(
        gemini.DEFAULT_MODEL, "Model, sent in the setup message.", check=bool,
        expect="a non-empty string",
    )
    voice: str = _setting(
        gemini.DEFAULT_VOICE, "Prebuilt voice of the replies (replaces `session.voice`).",
        check=bool, expect="a non-empty string",
    )
    auth_style: str = _setting(
        "header",
        "`header` sends `x-goog-api-key: <key>`; `query` adds `key=<key>` to the URL "
        "(never logged either way).",
        choices=("header", "query"),
    )
    reconnect_after_s: float = _setting(
        540.0,
        "Renew the connection (resuming the session) at the first quiet moment after this "
        "long, ahead of the server's connection limit; 0: only on goAway.",
        range=(0.0, 86400.0),
    )


@_SECTION
class SessionSettings:
    """`[session]`: what the model is asked to be and how turns are taken."""

    mode: str = _setting(
        "always_on",
        "`always_on` streams the mic and lets server VAD find turns; "
        "`push_to_talk` streams while the button is held; "
        "`wake_word` sends nothing until the local wake word, then lets server VAD end the turn.",
        choices=("always_on", "push_to_talk", "wake_word"),
    )
    wake_word: tuple[str, ...] = _setting(
        ("okay_nabu",),
        "Wake word of `wake_word` mode: a name or a list of up to two, each a model built into "
        f"pymicro-wakeword ({', '.join(f'`{w}`' for w in WAKE_WORDS)}) or the path of a "
        "microWakeWord model's `.json` (its `.tflite` beside it); all listen at once.",
        check=_are_wake_words, one_or_list=True,
        expect=f"a wake word or a list of up to {MAX_WAKE_WORDS}: each one of "
        f"{', '.join(WAKE_WORDS)} or the path of a .json file",
    )
    wake_cutoff: float = _setting(
        0.0,
        "Probability the wake word's detection must exceed (0: the model's own, 0.85 for "
        "okay_nabu); higher means fewer false wakes and more misses (bench/README.md).",
        range=(0.0, 0.99),
    )
    wake_listen_s: float = _setting(
        8.0,
        "After the wake word, seconds to wait for speech before listening locally again.",
        range=(1.0, 60.0),
    )
    follow_up_s: float = _setting(
        5.0,
        "After a reply in `wake_word` mode, seconds in which speech needs no wake word.",
        range=(0.0, 60.0),
    )
    wake_earcon: bool = _setting(
        False,
        "Play a short chime when the wake word is heard (best with echo cancellation: "
        "without it the server hears the chime).",
    )
    instructions: str = _setting(
        "You are a helpful voice assistant on a smart speaker. Keep answers short.",
        "System instructions for the model.",
        check=lambda text: len(text) <= MAX_INSTRUCTIONS_CHARS,
        expect=f"at most {MAX_INSTRUCTIONS_CHARS} characters",
    )
    voice: str = _setting("alloy", "Voice of the replies.", check=bool, expect="a non-empty string")
    transcription_model: str = _setting("", "Model transcribing what the user said (empty: off).")
    vad_threshold: float = _setting(
        0.5, "Server VAD speech threshold; higher needs louder speech.", range=(0.0, 1.0)
    )
    vad_prefix_padding_ms: int = _setting(
        300, "Audio kept before detected speech, in ms.", range=(0, 5000)
    )
    vad_silence_duration_ms: int = _setting(
        500, "Silence that ends a turn, in ms.", range=(0, 10000)
    )
    response_timeout_s: float = _setting(
        30.0,
        "Give up on a reply when the server sends nothing for this long while thinking.",
        range=(1.0, 600.0),
    )
    tools: tuple[str, ...] = _setting(
        TOOL_NAMES, "Local tools the model may call.", choices=TOOL_NAMES
    )


@_SECTION
class AudioSettings:
    """`[audio]`: sound devices and buffering."""

    input_device: str | int = _setting(
        "",
        "Microphone: a device name substring, or an index (digits become an integer); "
        "empty: the default device.",
    )
    output_device: str | int = _setting("", "Speaker, chosen like `input_device`.")
    ring_ms: int = _setting(
        10000, "Playback buffer for the model's audio, in ms.", range=(200, 60000)
    )
    max_reply_s: int = _setting(
        300,
        "Longest reply played whole, in s: what the ring cannot hold yet waits in memory, up "
        "to this much PCM (48 KB/s; 300 s is 14.4 MB); the rest of a longer reply is dropped.",
        range=(10, 3600),
    )
    preroll_ms: int = _setting(
        500,
        "Mic audio sent ahead of a turn started by the button or the wake word, in ms.",
        range=(0, 5000),
    )
    frame_ms: int = _setting(20, "Mic frame length, in ms.", range=(10, 100))
    volume: int = _setting(100, "Speaker volume, in percent.", range=(0, 100))
    latency_ms: int = _setting(
        40, "Output latency asked of the speaker device, in ms.", range=(1, 1000)
    )
    echo_cancellation: bool = _setting(
        True, "Remove the speaker's echo from the mic (WebRTC AEC3) while both devices are open; "
        "needs `frame_ms` a multiple of 10."
    )
    noise_suppression: bool = _setting(
        False, "WebRTC noise suppression on the mic, in the echo canceller's pass."
    )


@_SECTION
class ButtonSettings:
    """`[button]`: the push button on a GPIO pin."""

    enabled: bool = _setting(True, "Use a push button.")
    pin: int = _setting(17, "BCM pin of the button.", range=BCM_PINS)
    pull: str = _setting("up", "Internal pull resistor of the pin.", choices=("up", "down", "off"))
    active_low: bool = _setting(True, "A press pulls the pin low.")
    debounce_ms: int = _setting(30, "Edges closer than this are bounce, in ms.", range=(0, 1000))
    min_hold_ms: int = _setting(
        250, "Shorter push-to-talk presses are ignored, in ms.", range=(0, 5000)
    )
    double_tap_ms: int = _setting(
        400, "Two taps within this are a double tap, in ms.", range=(0, 2000)
    )
    long_press_ms: int = _setting(
        2000, "A press held this long toggles mute, in ms.", range=(100, 30000)
    )
    double_tap_action: str = _setting(
        "none",
        "What a double tap does.",
        choices=("none", "interrupt", "mute", "repeat"),
    )


@_SECTION
class LedSettings:
    """`[led]`: the status LED, single colour or RGB."""

    enabled: bool = _setting(True, "Use a status LED.")
    pin: int = _setting(18, "BCM pin of a single-colour LED.", range=BCM_PINS)
    rgb_pins: tuple[int, ...] = _setting(
        (),
        "BCM pins of an RGB LED, red green blue (empty: single-colour on `pin`).",
        range=BCM_PINS,
        check=lambda pins: len(pins) in (0, 3),
        expect="an empty list or three BCM pins",
    )
    pwm_hz: int = _setting(200, "PWM frequency for dimming and pulsing.", range=(10, 10000))
    patterns: Mapping[str, str] = _setting(
        _FrozenTable({}),
        'Per-state LED pattern overrides, e.g. `{ idle = "dim", thinking = '
        '"pulse:0.5@#ff8800" }`: `off`, `dim`, `solid`, `blink:<hz>` or `pulse:<hz>`, '
        "optionally `@#rrggbb`.",
        choices=LED_STATES,
        check=_is_led_pattern,
        expect='a pattern like "solid", "dim", "off", "blink:2" or "pulse:0.5@#ff8800"',
    )


@_SECTION
class LogSettings:
    """`[log]`: logging."""

    level: str = _setting(
        "info", "Lowest level logged.", choices=("debug", "info", "warning", "error")
    )
    journal: str = _setting(
        "auto",
        "Log to journald: `auto` when started by systemd.",
        choices=("auto", "on", "off"),
    )


def _is_time_zone(name: str) -> bool:
    """An IANA zone name zoneinfo can load (empty: the system's)."""
    if not name:
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@_SECTION
class TimerSettings:
    """`[timers]`: timers and alarms that ring on the device."""

    state_dir: str = _setting(
        "",
        "Directory of `timers.json` (empty: `$STATE_DIRECTORY`, which the unit's "
        "`StateDirectory=pivox` sets, else `$XDG_STATE_HOME/pivox`, else "
        "`~/.local/state/pivox`).",
    )
    timezone: str = _setting(
        "", "Time zone of alarm times, e.g. `Europe/Berlin` (empty: the system's).",
        check=_is_time_zone, expect="an IANA time zone name like \"Europe/Berlin\"",
    )
    missed_ring_s: float = _setting(
        600.0,
        "An alarm found at most this late at start (the device was off) still rings; a later "
        "one is logged as missed.",
        range=(0.0, 86400.0),
    )
    max_ring_s: float = _setting(
        600.0, "A ring nobody dismisses stops after this long.", range=(5.0, 3600.0)
    )


@_SECTION
class McpServerSettings:
    """One `[[mcp.servers]]` table: an MCP server whose tools the model may call."""

    name: str = _setting(
        "",
        "Short name of the server, in log lines, error outputs and `<name>_<tool>` when a tool's "
        "name collides. Required.",
        check=_is_server_name, expect="1 to 32 letters, digits, '_' or '-'", required=True,
    )
    url: str = _setting(
        "",
        "The server's endpoint, e.g. `https://homeassistant.local:8123/api/mcp`. Required.",
        check=_is_http_url, expect="an http:// or https:// URL", required=True,
    )
    transport: str = _setting(
        "streamable_http",
        "`streamable_http` (Home Assistant's `/api/mcp`, most servers) or `sse` for older "
        "servers (Home Assistant's `/mcp_server/sse`).",
        choices=("streamable_http", "sse"),
    )
    token_credential: str = _setting(
        "",
        "systemd credential (`LoadCredential=`) holding the bearer token; read first. A name, "
        "not a path.",
        check=_is_credential_name, expect="a credential name (no '/', not '.' or '..')",
    )
    token_env: str = _setting("", "Environment variable holding the token (empty: not read).")
    token_file: str = _setting(
        "", "File holding the token, mode 0600 or stricter (empty: none)."
    )
    tools: tuple[str, ...] = _setting(
        ("*",),
        "Glob patterns (`fnmatch`) of the server's tools offered to the model.",
        check=_are_globs, expect="a list of non-empty glob patterns",
    )
    timeout_s: float = _setting(
        10.0, "Seconds a tool call may take before the model is told it did not answer.",
        range=(0.5, 300.0),
    )
    ca_file: str = _setting(
        "",
        "PEM file of the CA (or self-signed certificate) the server's TLS certificate is "
        "checked against (empty: the system's CAs).",
    )
    allow_insecure: bool = _setting(
        False,
        "Allow an `http://` (cleartext) URL to a host that is not loopback: the token and "
        "the calls then cross the network unencrypted.",
    )
    use_prompt: bool = _setting(
        False,
        "Append the server's prompt (`prompts/list`, `prompts/get`) to the instructions, "
        "bounded.",
    )


def _distinct_names(servers: Sequence[McpServerSettings]) -> bool:
    return len({server.name for server in servers}) == len(servers)


@_SECTION
class McpSettings:
    """`[mcp]`: MCP servers (Home Assistant's `/api/mcp`, any other) bridged into the tools."""

    servers: tuple[McpServerSettings, ...] = _setting(
        (),
        "MCP servers, one `[[mcp.servers]]` table each (README, \"Home control (MCP)\"); "
        "their keys are the `mcp.servers[].*` rows.",
        check=_distinct_names, expect="servers with distinct names",
    )


@_SECTION
class ControlSettings:
    """`[control]`: the local control socket (README, "Control socket")."""

    socket: str = _setting(
        "auto",
        "Path of the control socket; `auto`: `control.sock` in the runtime directory "
        "(`$RUNTIME_DIRECTORY` under systemd, else `$XDG_RUNTIME_DIR/pivox`); empty: none.",
        check=lambda text: "\0" not in text and len(text) <= 100,
        expect="a path of at most 100 characters",
    )


@_SECTION
class MqttSettings:
    """`[mqtt]`: Home Assistant and the household over an MQTT broker; off without `host`."""

    host: str = _setting("", "Broker host name or address (empty: MQTT off).")
    port: int = _setting(1883, "Broker port (8883 is usual with TLS).", range=(1, 65535))
    tls: bool = _setting(False, "Connect with TLS.")
    ca_file: str = _setting("", "CA certificate file for TLS (empty: the system's).")
    username: str = _setting("", "User name at the broker (empty: anonymous).")
    password_credential: str = _setting(
        "mqtt_password",
        "systemd credential holding the broker password; read first. A name, not a path.",
        check=_is_credential_name,
        expect="a credential name (no '/', not '.' or '..')",
    )
    password_env: str = _setting(
        "PIVOX_MQTT_PASSWORD", "Environment variable holding the password (empty: not read)."
    )
    password_file: str = _setting(
        "", "File holding the password, mode 0600 or stricter (empty: none)."
    )
    discovery_prefix: str = _setting(
        "homeassistant", "Home Assistant's discovery prefix.",
        check=_is_topic_level, expect="a topic without wildcards or empty levels",
    )
    base_topic: str = _setting(
        "pivox", "Topic prefix of this device's states and commands.",
        check=_is_topic_level, expect="a topic without wildcards or empty levels",
    )
    device_id: str = _setting(
        "", "This device's id in topics and Home Assistant (empty: from /etc/machine-id).",
        check=_is_device_id, expect="letters, digits, '_' or '-', at most 64",
    )
    name: str = _setting(
        "pivox", "The device's name in Home Assistant.",
        check=lambda text: 0 < len(text) <= 64, expect="1 to 64 characters",
    )
    keepalive_s: int = _setting(
        30, "Seconds between MQTT keepalives; the broker declares the device gone after 1.5x.",
        range=(5, 600),
    )


@_SECTION
class Config:
    """The whole configuration; every field a section of the TOML file."""

    server: ServerSettings = field(default_factory=ServerSettings)
    gemini: GeminiSettings = field(default_factory=GeminiSettings)
    session: SessionSettings = field(default_factory=SessionSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    button: ButtonSettings = field(default_factory=ButtonSettings)
    led: LedSettings = field(default_factory=LedSettings)
    log: LogSettings = field(default_factory=LogSettings)
    timers: TimerSettings = field(default_factory=TimerSettings)
    control: ControlSettings = field(default_factory=ControlSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    mcp: McpSettings = field(default_factory=McpSettings)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigChange:
    """What a reload from one config to another must redo."""

    machine: bool
    """A new mode (or double-tap action) is a new state machine, and a new session."""
    session: bool
    """Reconnect without resuming: the server, the session settings or the key changed."""
    capture: bool
    """Rebuild the mic pipeline (echo canceller, wake word, pre-roll)."""
    devices: bool
    """Reopen the sound devices."""


def config_change(old: Config, new: Config, *, key_changed: bool) -> ConfigChange:
    """Compare the running config with a reloaded one (`key_changed`: the API key differs)."""
    machine = (old.session.mode, old.button.double_tap_action) != (
        new.session.mode, new.button.double_tap_action)
    session = (old.server, old.gemini, old.session) != (new.server, new.gemini, new.session)
    return ConfigChange(
        machine=machine,
        session=machine or session or key_changed,
        capture=(old.audio, old.session.mode, old.session.wake_word) != (
            new.audio, new.session.mode, new.session.wake_word),
        devices=old.audio != new.audio,
    )


# --------------------------------------------------------------------------- value kinds


class _Invalid(Exception):
    """A value failed its kind or rule; `subkey` names a table entry when one is at fault
    (`.name` in a table, `[0].name` in an array of tables)."""

    def __init__(self, expected: str, got: Any, hint: str = "", subkey: str = "",
                 *, message: str = "") -> None:
        self.subkey = subkey
        super().__init__(message or f"expected {expected}, got {_show(got)}{hint}")

    def within(self, prefix: str) -> _Invalid:
        """The same error, its subkey under `prefix` (an entry of an array of tables)."""
        inner = self.subkey if self.subkey.startswith("[") or not self.subkey else "." + self.subkey
        return _Invalid("", None, subkey=prefix + inner, message=str(self))


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except RecursionError:
        return "a value nested too deep"
    return text if len(text) <= 60 else text[:57] + "..."


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _did_you_mean(name: Any, candidates: Sequence[str]) -> str:
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _expected(noun: str, rule: _Rule) -> str:
    """What a scalar must be, from its type noun and its rule."""
    if rule.choices:
        return f"one of {_quoted(rule.choices)}"
    if rule.range is not None:
        return f"{noun} between {rule.range[0]} and {rule.range[1]}"
    return rule.expect or noun


def _checked(accept: Callable[[Any], Any], noun: str, value: Any, rule: _Rule) -> Any:
    """`accept(value)` (None: wrong type), then within `range` and among `choices`."""
    got = accept(value)
    if (
        got is None
        or (rule.range is not None and not rule.range[0] <= got <= rule.range[1])
        or (rule.choices and got not in rule.choices)
    ):
        raise _Invalid(_expected(noun, rule), value, _did_you_mean(value, rule.choices))
    return got


def _scalar(noun: str, accept: Callable[[Any], Any]) -> Callable[[Any, _Rule], Any]:
    """A converter of one TOML value, checked by type, `range`, `choices`, then `check`."""

    def convert(value: Any, rule: _Rule) -> Any:
        got = _checked(accept, noun, value, rule)
        if rule.check is not None and not rule.check(got):
            raise _Invalid(rule.expect, value)
        return got

    return convert


def _list(noun: str, accept: Callable[[Any], Any]) -> Callable[[Any, _Rule], Any]:
    """A converter of a TOML array into a tuple of distinct items, each checked like a scalar.

    `range` and `choices` apply to each item, `check` to the whole tuple.
    """

    def convert(value: Any, rule: _Rule) -> tuple[Any, ...]:
        given = value  # what errors quote
        if rule.one_or_list and not isinstance(value, list):
            value = [value]
        item_rule = dataclasses.replace(rule, check=None, expect="")
        expected = f"{rule.expect or 'a list of distinct items'}, each {_expected(noun, item_rule)}"
        if not isinstance(value, list) or len(set(map(repr, value))) != len(value):
            raise _Invalid(expected, given)
        items = []
        for entry in value:
            try:
                items.append(_checked(accept, noun, entry, item_rule))
            except _Invalid:
                raise _Invalid(expected, given, _did_you_mean(entry, rule.choices)) from None
        if rule.check is not None and not rule.check(items):
            raise _Invalid(expected, given)
        return tuple(items)

    return convert


def _table(value: Any, rule: _Rule) -> Mapping[str, str]:
    """A converter of a TOML table of strings: keys among `choices`, values pass `check`."""
    if not isinstance(value, dict):
        raise _Invalid('a table like { name = "value" }', value)
    for name, entry in value.items():
        if name not in rule.choices:
            expected = f"a key among {_quoted(rule.choices)}"
            raise _Invalid(expected, name, _did_you_mean(name, rule.choices), subkey=name)
        if not isinstance(entry, str) or (rule.check is not None and not rule.check(entry)):
            raise _Invalid(rule.expect, entry, subkey=name)
    return _FrozenTable(value)


def _tables(cls: type[Any]) -> Callable[[Any, _Rule], tuple[Any, ...]]:
    """A converter of a TOML array of tables (`[[section.key]]`) into a tuple of `cls`, each
    entry's keys checked by the same kinds and rules as a section's."""

    def convert(value: Any, rule: _Rule) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise _Invalid("an array of tables ([[...]] or [{ ... }])", value)
        settings = _settings_of(cls, "")
        entries = []
        for index, entry in enumerate(value):
            at = f"[{index}]"
            if not isinstance(entry, dict):
                raise _Invalid("a table", entry, subkey=at)
            for key in entry:
                if key not in settings:
                    expected = f"a key among {_quoted(list(settings))}"
                    raise _Invalid(expected, key, _did_you_mean(key, list(settings)),
                                   subkey=f"{at}.{key}")
            for key, setting in settings.items():
                if setting.rule.required and key not in entry:
                    raise _Invalid("", None, subkey=f"{at}.{key}",
                                   message="missing: this key is required")
            converted = {}
            for key, item in entry.items():
                try:
                    converted[key] = settings[key].kind.convert(item, settings[key].rule)
                except _Invalid as error:
                    raise error.within(f"{at}.{key}") from None
            entries.append(cls(**converted))
        if rule.check is not None and not rule.check(entries):
            raise _Invalid(rule.expect, value)
        return tuple(entries)

    return convert


def _accept_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _accept_float(value: Any) -> float | None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if number else None


def _accept_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _accept_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _accept_device(value: Any) -> str | int | None:
    """A device: an index (an integer, or a string of digits) or a name substring."""
    if isinstance(value, str):
        return int(value) if re.fullmatch(r"[0-9]+", value.strip()) else value
    index = _accept_int(value)
    return index if index is not None and index >= 0 else None


@dataclass(frozen=True, slots=True)
class _Kind:
    """A Python field type: its name in the README and how a TOML value becomes one."""

    name: str
    convert: Callable[[Any, _Rule], Any]


_KINDS: dict[Any, _Kind] = {
    str: _Kind("string", _scalar("a string", _accept_str)),
    int: _Kind("integer", _scalar("an integer", _accept_int)),
    float: _Kind("number", _scalar("a number", _accept_float)),
    bool: _Kind("boolean", _scalar("true or false", _accept_bool)),
    str | int: _Kind(
        "string or integer", _scalar("a string or a non-negative integer", _accept_device)
    ),
    tuple[str, ...]: _Kind("list of strings", _list("a string", _accept_str)),
    tuple[int, ...]: _Kind("list of integers", _list("an integer", _accept_int)),
    Mapping[str, str]: _Kind("table of strings", _table),
}
_KINDS[tuple[McpServerSettings, ...]] = _Kind("list of tables", _tables(McpServerSettings))


@dataclass(frozen=True, slots=True)
class _Setting:
    """One `section.key` of the schema."""

    section: str
    key: str
    kind: _Kind
    rule: _Rule
    default: Any

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


_SECTION_TYPES: dict[str, type[Any]] = get_type_hints(Config)
_TABLE_TYPES: dict[str, type[Any]] = {"mcp.servers": McpServerSettings}
"""The arrays of tables, by `section.key`: their keys are documented as `section.key[].name`."""


def _settings_of(cls: type[Any], section: str) -> dict[str, _Setting]:
    """The settings of one section (or table) dataclass, by key, in declaration order."""
    hints, defaults = get_type_hints(cls), cls()
    return {
        f.name: _Setting(
            section, f.name, _KINDS[hints[f.name]], f.metadata["pivox"], getattr(defaults, f.name)
        )
        for f in dataclasses.fields(cls)
    }


def _schema() -> dict[str, dict[str, _Setting]]:
    """Every setting, by section then key, in declaration order."""
    return {section: _settings_of(cls, section) for section, cls in _SECTION_TYPES.items()}


_SCHEMA = _schema()

# --------------------------------------------------------------------------- loading


def load_config(path: str | os.PathLike[str] | None, overrides: Sequence[str] = ()) -> Config:
    """Read the TOML file at `path` (None: all defaults), then apply `section.key=value` overrides.

    Raises ConfigError naming the file (or `--set`) and the key for any problem.
    """
    given: dict[str, dict[str, tuple[Any, str]]] = {section: {} for section in _SCHEMA}
    if path is not None:
        source = os.fspath(path)
        for section, table in _sections(_read_toml(source), source):
            for key, value in table.items():
                _lookup(section, key, source)
                given[section][key] = (value, source)
    for text in overrides:
        setting, value = _parse_override(text)
        given[setting.section][setting.key] = (value, OVERRIDE_SOURCE)
    config = Config(
        **{
            section: _SECTION_TYPES[section](
                **{
                    key: _convert(_SCHEMA[section][key], value, source)
                    for key, (value, source) in values.items()
                }
            )
            for section, values in given.items()
        }
    )
    for section in ("server", "gemini"):
        _check_transport(config, section, given[section].get("url", (None, OVERRIDE_SOURCE))[1])
    _check_mcp_transport(config, given["mcp"].get("servers", (None, OVERRIDE_SOURCE))[1])
    return config


def _check_mcp_transport(config: Config, source: str) -> None:
    """An MCP server's token goes over http:// only to loopback, unless allowed explicitly."""
    for index, server in enumerate(config.mcp.servers):
        host = urllib.parse.urlsplit(server.url).hostname or ""
        if server.url.startswith("http://") and not is_loopback(host) and not (
                server.allow_insecure):
            raise ConfigError(
                f"expected https://, a loopback host or allow_insecure = true, got http:// to "
                f"{host} (the token and the calls would cross the network unencrypted)",
                path=source, key=f"mcp.servers[{index}].url",
            )


def _check_transport(config: Config, section: str, source: str) -> None:
    """Refuse a cleartext URL to a host that is not loopback unless allowed explicitly."""
    url = getattr(config, section).url
    host = urllib.parse.urlsplit(url).hostname or ""
    if url.startswith("ws://") and not is_loopback(host) and not config.server.allow_insecure:
        raise ConfigError(
            f"expected wss://, a loopback host or server.allow_insecure = true, got ws:// to "
            f"{host} (the key and the audio would cross the network unencrypted)",
            path=source, key=f"{section}.url",
        )


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        raise ConfigError("no such file", path=path) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror or error}", path=path) from None
    try:
        return tomllib.loads(data.decode())
    except RecursionError:
        raise ConfigError("invalid TOML: nested too deep", path=path) from None
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text (at line {line})", path=path) from None
    except tomllib.TOMLDecodeError as error:
        # tomllib's message ends with "(at line L, column C)"
        raise ConfigError(f"invalid TOML: {error}", path=path) from None


def _owner_hint(name: str, candidates: Sequence[str]) -> str:
    """A did-you-mean among `candidates`, else the section that has a key of that name."""
    owners = [f"[{section}]" for section, keys in _SCHEMA.items() if name in keys]
    return _did_you_mean(name, candidates) or (f" (it belongs under {owners[0]})" if owners else "")


def _sections(doc: dict[str, Any], source: str) -> list[tuple[str, dict[str, Any]]]:
    """The document's `[section]` tables; anything else at top level is an error."""
    for name, table in doc.items():
        if name not in _SCHEMA:
            hint = _owner_hint(name, list(_SCHEMA))
            raise ConfigError(f"unknown section{hint}", path=source, key=name)
        if not isinstance(table, dict):
            raise ConfigError(f"expected a table, got {_show(table)}", path=source, key=name)
    return list(doc.items())


def _lookup(section: str, key: str, source: str) -> _Setting:
    """The setting named `section.key`, or a ConfigError saying what exists."""
    if section not in _SCHEMA:
        hint = _owner_hint(section, list(_SCHEMA))
        raise ConfigError(f"unknown section{hint}", path=source, key=f"{section}.{key}")
    keys = _SCHEMA[section]
    if key not in keys:
        hint = _owner_hint(key, list(keys)) or f"; [{section}] has {', '.join(keys)}"
        raise ConfigError(f"unknown key{hint}", path=source, key=f"{section}.{key}")
    return keys[key]


def _parse_override(text: str) -> tuple[_Setting, Any]:
    """`section.key=value`: the value is read as TOML when it parses, else as a bare string.

    A string setting takes the text as given unless it is a TOML string, so
    `--set session.voice=true` means "true".
    """
    name, equals, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not equals or not dot:
        raise ConfigError(f"expected section.key=value, got {_show(text)}", path=OVERRIDE_SOURCE)
    setting = _lookup(section, key, OVERRIDE_SOURCE)
    raw = raw.strip()
    try:
        doc = tomllib.loads(f"v = {raw}")
    except RecursionError:
        raise ConfigError("nested too deep", path=OVERRIDE_SOURCE, key=setting.name) from None
    except tomllib.TOMLDecodeError:
        return setting, raw
    value = doc["v"] if len(doc) == 1 else raw  # a newline must not smuggle in more keys
    return setting, raw if setting.kind is _KINDS[str] and not isinstance(value, str) else value


def _convert(setting: _Setting, value: Any, source: str) -> Any:
    try:
        return setting.kind.convert(value, setting.rule)
    except RecursionError:
        raise ConfigError("nested too deep", path=source, key=setting.name) from None
    except _Invalid as error:
        dot = "" if error.subkey.startswith("[") else "."
        key = f"{setting.name}{dot}{error.subkey}" if error.subkey else setting.name
        raise ConfigError(str(error), path=source, key=key) from None


# --------------------------------------------------------------------------- documentation


def _toml(value: Any) -> str:
    """A default value as it is written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple):
        return "[" + ", ".join(map(_toml, value)) + "]"
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{key} = {_toml(entry)}" for key, entry in value.items())
        return f"{{ {pairs} }}" if pairs else "{}"
    return repr(value)


def _constraint(setting: _Setting) -> str:
    """The rule of a setting as a sentence for the README, or empty."""
    rule = setting.rule
    if rule.choices:
        lead = {"table of strings": "Keys", "list of strings": "Any of"}.get(
            setting.kind.name, "One of"
        )
        return f" {lead}: {', '.join(f'`{choice}`' for choice in rule.choices)}."
    if rule.range is not None:
        return f" From {rule.range[0]} to {rule.range[1]}."
    return ""


def config_table_markdown() -> str:
    """The README's settings table (key, type, default, description), from the schema; the
    keys of an array of tables follow it as `section.key[].name`."""
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    for keys in _SCHEMA.values():
        for setting in keys.values():
            rows.append(_row(setting.name, setting))
            table = _TABLE_TYPES.get(setting.name)
            if table is not None:
                rows += [_row(f"{setting.name}[].{key}", entry)
                         for key, entry in _settings_of(table, setting.section).items()]
    return "\n".join(rows) + "\n"


def _row(name: str, setting: _Setting) -> str:
    cells = (
        f"`{name}`",
        setting.kind.name,
        f"`{_toml(setting.default)}`",
        setting.rule.help + _constraint(setting),
    )
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
