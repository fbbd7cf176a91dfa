"""A `ControlHost` that records what the doors asked of it, for the socket and MQTT tests."""

from __future__ import annotations

from typing import Any

from pivox.control.commands import Status, TimerInfo


class RecordingHost:
    """Remembers every call in `calls`; its status reflects mute and volume as set."""

    def __init__(self, *, refuse: str | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.muted = False
        self.volume = 80
        self.refuse = refuse

    def set_muted(self, muted: bool) -> None:
        self.calls.append(("mute", muted))
        self.muted = muted

    def set_volume(self, level: int) -> None:
        self.calls.append(("volume", level))
        self.volume = level

    def announce(self, text: str) -> str | None:
        self.calls.append(("say", text))
        return self.refuse

    def ask(self, text: str) -> str | None:
        self.calls.append(("ask", text))
        return self.refuse

    def set_wake_word(self, name: str) -> None:
        self.calls.append(("wake_word", name))

    def stop_speaking(self) -> None:
        self.calls.append(("stop", None))

    def start_conversation(self) -> None:
        self.calls.append(("converse", None))

    def status(self) -> Status:
        return Status(state="idle", link=True, provider="openai", last_latency_ms=412,
                      muted=self.muted, volume=self.volume,
                      timers=(TimerInfo(name="tea", due_in_s=90.0),))
