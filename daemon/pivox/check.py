"""`pivox check`: validate the config, the key's presence, the URL, the sound devices and the
room's echo (a chirp played and recorded: `pivox.echotest`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pivox.aec import MissingDependency, load_webrtc
from pivox.audio import Microphone, Speaker, list_devices, select_device
from pivox.config import Config
from pivox.errors import ConfigError, DeviceError
from pivox.ring import AudioRing
from pivox.secrets import load_api_key

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def run_check(config: Config) -> int:
    """Print one line per check; exit 1 if any failed. Never prints the key."""
    failures = 0

    def report(ok: bool, what: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}")

    report(True, "config is valid")
    url = urlsplit(config.server.url)
    report(url.scheme in ("ws", "wss") and bool(url.hostname),
           f"server url {config.server.url} ({config.server.dialect} dialect)")
    try:
        key = load_api_key(config.server)
    except ConfigError as exc:
        report(False, f"API key: {exc}")
    else:
        local = url.hostname in LOCAL_HOSTS
        report(key is not None or local,
               f"API key {'present' if key else 'missing'} "
               f"(credential {config.server.credential!r}, ${config.server.api_key_env}, "
               f"file {config.server.api_key_file or '-'})")
    try:
        devices = list_devices()
    except DeviceError as exc:
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


def _echo_check(config: Config) -> tuple[bool, str]:
    """Play a chirp, record it: the echo's delay and the ERLE reached, in one line."""
    a = config.audio
    if not a.echo_cancellation:
        return True, "echo self-test skipped: audio.echo_cancellation = false"
    try:
        load_webrtc()
    except MissingDependency as exc:
        return False, f"echo cancellation unavailable: {exc}"
    from pivox.echotest import measure_echo  # numpy work only when the devices work

    try:
        echo = measure_echo(a.input_device, a.output_device)
    except (DeviceError, TimeoutError) as exc:
        return False, f"echo self-test: {exc}"
    if echo.delay_ms is None or echo.echo_db is None:
        return echo.works, f"echo self-test: {echo.verdict}"
    return echo.works, (f"echo self-test: delay {echo.delay_ms:.0f} ms, echo at "
                        f"{echo.echo_db:.0f} dB; {echo.verdict}")
