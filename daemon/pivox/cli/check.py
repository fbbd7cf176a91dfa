"""`pivox check`: validate the config, the key's presence, the URL, the wake word (in
wake_word mode), GPIO, each MCP server (answered, how many tools), the MQTT broker (when set),
the sound devices, and the room's echo (a chirp played and recorded:
`pivox.audio.echotest`)."""

from __future__ import annotations

import asyncio
from types import ModuleType
from urllib.parse import urlsplit

from pivox.audio.aec import load_webrtc
from pivox.audio.soundcard import Microphone, Speaker, list_devices, select_device
from pivox.audio.wake import load_model, unavailable_reason
from pivox.config import Config, is_loopback
from pivox.core.errors import ConfigError, DeviceError
from pivox.core.ring import AudioRing
from pivox.host.gpio import Button, Led, load_gpio
from pivox.host.optional import MissingDependency
from pivox.net.secrets import load_api_key, load_mcp_token, load_mqtt_password


def run_check(config: Config, gpio_module: ModuleType | None = None) -> int:
    """Print one line per check; exit 1 if any failed. Never prints the key.

    `gpio_module` stands in for `RPi.GPIO` (tests); None imports the real one.
    """
    failures = 0

    def report(ok: bool, what: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}")

    report(True, "config is valid")
    gemini = config.server.provider == "gemini"
    url = urlsplit(config.gemini.url if gemini else config.server.url)
    shown = url._replace(query="", fragment="").geturl()  # a query may hold a key
    report(url.scheme in ("ws", "wss") and bool(url.hostname),
           f"server url {shown} "
           f"({'gemini' if gemini else config.server.dialect + ' dialect'})")
    if url.scheme == "ws" and not is_loopback(url.hostname or ""):
        print(f"WARN server url {shown} is cleartext: the key and the audio cross "
              "the network unencrypted (server.allow_insecure = true)")
    try:
        key = load_api_key(config.server)
    except ConfigError as exc:
        report(False, f"API key: {exc}")
    else:
        local = is_loopback(url.hostname or "")
        report(key is not None or local,
               f"API key {'present' if key else 'missing'} "
               f"(credential {config.server.credential!r}, ${config.server.api_key_env}, "
               f"file {config.server.api_key_file or '-'})")
    if config.session.mode == "wake_word":
        reason = unavailable_reason()
        for entry in () if reason else config.session.wake_word:
            try:
                _, model = load_model(entry, config.session.wake_cutoff)
            except ConfigError as exc:
                report(False, str(exc))
            else:
                report(True, f"wake word {model}")
        if reason:
            report(False, reason)
    for ok, what in gpio_report(config, gpio_module):
        report(ok, what)
    for ok, what in mcp_report(config):
        report(ok, what)
    for ok, what in mqtt_report(config):
        report(ok, what)
    try:
        devices = list_devices()
    except (DeviceError, MissingDependency) as exc:
        report(False, f"sound system: {exc}")
        return 1
    for kind, wanted in (("input", config.audio.input_device),
                         ("output", config.audio.output_device)):
        try:
            info = select_device(devices, wanted, kind)
        except DeviceError as exc:
            report(False, f"{kind} device: {exc}")
            continue
        device = (Microphone(info.index, on_frame=lambda frame: None) if kind == "input"
                  else Speaker(AudioRing(48_000), info.index))
        try:
            device.start()
        except DeviceError as exc:
            report(False, f"{kind} device {info.name!r}: {exc}")
        else:
            report(True, f"{kind} device {info.name!r} opens at {device.device_rate} Hz")
        finally:
            device.close()
    if not failures:
        report(*_echo_check(config))
    return 1 if failures else 0


def mqtt_report(config: Config) -> list[tuple[bool, str]]:
    """With `[mqtt] host` set: the library, the password's presence, and a connection."""
    s = config.mqtt
    if not s.host:
        return []
    try:
        from pivox.control.mqtt import probe

        password = load_mqtt_password(s)
        problem = asyncio.run(probe(s, None if password is None else password.reveal()))
    except (MissingDependency, ConfigError) as exc:
        return [(False, f"MQTT: {exc}")]
    where = f"MQTT broker {s.host}:{s.port}{' (TLS)' if s.tls else ''} as {s.username or '-'}"
    found = "a password" if password is not None else "no password"
    if problem is None:
        return [(True, f"{where} accepts the connection ({found})")]
    return [(False, f"{where} refuses it: {problem} ({found})")]


def _echo_check(config: Config) -> tuple[bool, str]:
    """Play a chirp, record it: the echo's delay and the ERLE reached, in one line."""
    a = config.audio
    if not a.echo_cancellation:
        return True, "echo self-test skipped: audio.echo_cancellation = false"
    try:
        load_webrtc()
    except MissingDependency as exc:
        return False, f"echo cancellation unavailable: {exc}"
    from pivox.audio.echotest import measure_echo  # numpy work only when the devices work

    try:
        echo = measure_echo(a.input_device, a.output_device)
    except (DeviceError, TimeoutError) as exc:
        return False, f"echo self-test: {exc}"
    if echo.delay_ms is None or echo.echo_db is None:
        return echo.works, f"echo self-test: {echo.verdict}"
    return echo.works, (f"echo self-test: delay {echo.delay_ms:.0f} ms, echo at "
                        f"{echo.echo_db:.0f} dB; {echo.verdict}")


_IN_USE_HINT = " (is pivox.service running? stop it first)"


def gpio_report(config: Config, gpio_module: ModuleType | None = None) -> list[tuple[bool, str]]:
    """(ok, line) for the GPIO library and each enabled pin: claimed as `pivox run` would."""
    button, led = config.button, config.led
    if not (button.enabled or led.enabled):
        return [(True, "GPIO not used (button and LED disabled)")]
    try:
        gpio = gpio_module or load_gpio()
    except DeviceError as exc:
        return [(False, f"GPIO library: {exc}")]
    lines = [(True, f"GPIO library {getattr(gpio, '__name__', 'RPi.GPIO')} imports")]
    if button.enabled:
        try:
            Button(button.pin, pull=button.pull, active_low=button.active_low,
                   bouncetime_ms=button.debounce_ms, on_edge=lambda pressed, at: None,
                   gpio_module=gpio).close()
            lines.append((True, f"button on BCM {button.pin} (pull {button.pull}) claimed"))
        except DeviceError as exc:
            lines.append((False, f"button on BCM {button.pin}: {exc}{_IN_USE_HINT}"))
    if led.enabled:
        pins = led.rgb_pins or (led.pin,)
        names = " ".join(map(str, pins))
        try:
            Led(pins, pwm_hz=led.pwm_hz, gpio_module=gpio).close()
            lines.append((True, f"LED on BCM {names} claimed"))
        except DeviceError as exc:
            lines.append((False, f"LED on BCM {names}: {exc}{_IN_USE_HINT}"))
    return lines


def mcp_report(config: Config) -> list[tuple[bool, str]]:
    """(ok, line) per MCP server: connected and listed as `pivox run` would; never the token."""
    lines: list[tuple[bool, str]] = []
    for index, server in enumerate(config.mcp.servers):
        where = f"MCP server {server.name} ({urlsplit(server.url)._replace(query='').geturl()})"
        try:
            from pivox.skills.mcp import ServerLink, load_sdk

            load_sdk()
            token = load_mcp_token(server, index)
        except (ConfigError, MissingDependency) as exc:
            lines.append((False, f"{where}: {exc}"))
            continue
        link = ServerLink(server, token, on_listing=lambda: None)
        ok, what = asyncio.run(link.probe())
        lines.append((ok, f"{where}: {what.removeprefix(server.name + ' ')}"
                      f"{'' if token else ' (no token configured)'}"))
    return lines
