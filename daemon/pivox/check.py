"""`pivox check`: validate the config, the key's presence, the URL and the sound devices."""

from __future__ import annotations

from urllib.parse import urlsplit

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
    gemini = config.server.provider == "gemini"
    url = urlsplit(config.gemini.url if gemini else config.server.url)
    shown = url._replace(query="", fragment="").geturl()  # a query may hold a key
    report(url.scheme in ("ws", "wss") and bool(url.hostname),
           f"server url {shown} "
           f"({'gemini' if gemini else config.server.dialect + ' dialect'})")
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
    return 1 if failures else 0
