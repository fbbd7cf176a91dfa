"""The daemon's side of outside control: `ControlHost` for the control socket and MQTT, and
the announcements they queue (core/announcements.py decides; this module acts).

Composition, like daemon.py: it reaches the daemon's parts (machine, link, playback) and
starts the doors; the daemon calls `tick`, and the `on_*` hooks from its event routing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import socket as stdsocket
from typing import TYPE_CHECKING, Any

from pivox.audio.devices import new_capture
from pivox.audio.wake import announcement_chime
from pivox.config import MqttSettings
from pivox.control.commands import Status, TimerInfo
from pivox.control.socket import SOCKET_NAME, ControlSocket, runtime_dir
from pivox.core import machine as m
from pivox.core.announcements import Announcement, Announcements, Kind
from pivox.core.errors import ConfigError
from pivox.core.events import ResponseCreated
from pivox.core.responses import Origin
from pivox.host.logsafe import shown
from pivox.host.optional import MissingDependency, require
from pivox.host.waits import cancel_all
from pivox.net.secrets import load_mqtt_password
from pivox.wiring.parts import DaemonParts

if TYPE_CHECKING:  # loaded only with [mqtt] host set: an idle device without it keeps no code
    from pivox.control.mqtt import MqttDoor

log = logging.getLogger("pivox.doors")

QUEUE_LIMIT = 8
"""Announcements and questions waiting at most; one more is refused with an error."""
MACHINE_ID = "/etc/machine-id"
MQTT_STOP_S = 1.0
"""How long a stop waits for the MQTT task after its cancel (`offline` was published first)."""


class Doors:
    """Implements `ControlHost` on a daemon; owns the control socket and the announcements."""

    def __init__(self, daemon: DaemonParts) -> None:
        self.d = daemon
        self.announcements = Announcements(QUEUE_LIMIT)
        self.socket: ControlSocket | None = None
        self.mqtt: MqttDoor | None = None
        self._mqtt_task: asyncio.Task[None] | None = None
        self._turns_seen = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the control socket and connect MQTT when configured (a failure of either is
        one log line, never fatal)."""
        self._start_mqtt(self.d.config.mqtt)
        path = socket_path(self.d.config.control.socket)
        if path is None:
            return
        socket = ControlSocket(self, path)
        try:
            await socket.start()
        except OSError as exc:
            log.warning("no control socket at %s: %s", path, exc.strerror or exc,
                        extra={"PIVOX_EVENT": "control_socket"})
            return
        self.socket = socket

    async def close(self) -> None:
        """Say `offline` on MQTT, close the control socket."""
        if self.mqtt is not None and self._mqtt_task is not None:
            self.mqtt.update(self.status())
            await self.mqtt.close()
            await cancel_all([self._mqtt_task], MQTT_STOP_S)
        if self.socket is not None:
            await self.socket.close()

    def _start_mqtt(self, settings: MqttSettings) -> None:
        if not settings.host:
            return
        try:
            require("aiomqtt", "aiomqtt", "mqtt")
            password = load_mqtt_password(settings)
        except (MissingDependency, ConfigError) as exc:
            log.error("MQTT off: %s", exc, extra={"PIVOX_EVENT": "mqtt_down"})
            return
        from pivox.control.mqtt import MqttDoor

        device_id = settings.device_id or machine_device_id()
        self.mqtt = MqttDoor(settings, self, device_id=device_id,
                             password=None if password is None else password.reveal())
        self._mqtt_task = asyncio.create_task(self.mqtt.run(), name="mqtt")

    def event(self, event_type: str, **data: Any) -> None:
        """Route: an event for Home Assistant (wake, turn_done, timer_rung, answer)."""
        if self.mqtt is not None:
            self.mqtt.event(event_type, **data)

    # ------------------------------------------------------------------ ControlHost

    def set_muted(self, muted: bool) -> None:
        """Mute or unmute the microphone."""
        self.d.set_muted(muted)

    def set_volume(self, level: int) -> None:
        """Set the speaker volume."""
        self.d.set_volume(level)

    def announce(self, text: str) -> str | None:
        """Queue an announcement."""
        return self._queue("say", text)

    def ask(self, text: str) -> str | None:
        """Queue a question."""
        return self._queue("ask", text)

    def set_wake_word(self, name: str) -> None:
        """Listen for another built-in wake word from now on (until a reload)."""
        d = self.d
        config: Any = d.config  # config.py's dataclasses are made by a decorator mypy misses
        d.config = dataclasses.replace(
            config, session=dataclasses.replace(config.session, wake_word=(name,)))
        d.capture = new_capture(d.config)

    def stop_speaking(self) -> None:
        """End the reply or announcement being made or played."""
        self.d.feed(m.StopRequested())

    def start_conversation(self) -> None:
        """Start listening, as a tap does where a tap starts a turn."""
        state, mode = self.d.machine.state, self.d.machine.mode
        if (mode, state) in (("wake_word", m.State.IDLE), ("always_on", m.State.LISTENING)):
            self.d.feed(m.Tap())
        else:
            log.info("start conversation ignored in %s (%s mode)", state.value, mode,
                     extra={"PIVOX_EVENT": "control"})

    def status(self) -> Status:
        """The current snapshot."""
        d = self.d
        upcoming = d.timers.upcoming()
        return Status(
            state=d.machine.state.value, link=d.link.up, provider=d.config.server.provider,
            last_latency_ms=d.turns.last_latency_ms, muted=d.machine.muted,
            volume=d.config.audio.volume if d.audio.volume is None else d.audio.volume,
            announcements_queued=len(self.announcements),
            wake_word=d.config.session.wake_word[0],
            timers=tuple(TimerInfo(name=name, due_in_s=round(left, 1))
                         for name, left, _ in upcoming),
            next_timer=dt.datetime.fromtimestamp(upcoming[0][2]).astimezone().isoformat(
                timespec="seconds") if upcoming else None,
            mqtt="off" if self.mqtt is None else (
                "connected" if self.mqtt.connected else "disconnected"),
        )

    # ------------------------------------------------------------------ announcements

    def _queue(self, kind: Kind, text: str) -> str | None:
        entry = self.announcements.push(kind, text)
        if entry is None:
            log.warning("announcement refused: %d already queued", QUEUE_LIMIT,
                        extra={"PIVOX_EVENT": "announce"})
            return f"announcement queue full ({QUEUE_LIMIT} waiting)"
        log.info("%s %d queued: %s", "question" if kind == "ask" else "announcement",
                 entry.number, shown(text, 120), extra={"PIVOX_EVENT": kind})
        self.tick(self.d.clock())  # at rest: now, not at the next tick (up to 100 ms later)
        return None

    def tick(self, now: float) -> None:
        """Start the next announcement when the device is at rest and nothing plays;
        offline, each queued one is a chime and a log line. MQTT gets the status."""
        d = self.d
        speaking = self.announcements.speaking
        if speaking is not None and speaking not in (d.responses.live, d.responses.playing):
            self.announcements.finished(speaking)  # done and played out, or cancelled
        if d.stats["turns"] != self._turns_seen:
            self._turns_seen = d.stats["turns"]
            self.event("turn_done", latency_ms=d.turns.last_latency_ms)
        if self.mqtt is not None:
            self.mqtt.update(self.status())
        if not d.link.up:
            for entry in self.announcements.drop_all():
                self._chime()
                log.warning("offline: announcement %d could not be spoken: %s", entry.number,
                            shown(entry.text, 120), extra={"PIVOX_EVENT": "announce_offline"})
            return
        busy = bool(d.responses.live or d.ring.available or d.playback.pending)
        due = self.announcements.next_due(now, at_rest=d.quiet(), busy=busy)
        if due is not None:
            self._speak(due)

    def _speak(self, entry: Announcement) -> None:
        if entry.kind == "say":
            self._chime()
        for event in entry.client_events():
            self.d.link.send(event)
        log.info("%s %d sent", "question" if entry.kind == "ask" else "announcement",
                 entry.number, extra={"PIVOX_EVENT": entry.kind})

    def _chime(self) -> None:
        self.d.playback.write(announcement_chime(), "chime", "chime")
        self.d.playback.finish()  # the silence after it is no underrun

    def origin(self, event: ResponseCreated, now: float) -> Origin:
        """Route: a response was created; whose is it (the response tracker's origin)?"""
        if self.announcements.created(event.response_id, event.response, now,
                                      self.d.config.session.follow_up_s):
            log.info("announcement speaking as %s", event.response_id,
                     extra={"PIVOX_EVENT": "announce", "RESPONSE_ID": event.response_id})
            return "announcement"
        return "turn"

    def on_user_transcript(self, transcript: str, now: float) -> None:
        """Route: what the user said; the answer to a question is logged as such."""
        if self.announcements.answer(now):
            log.info("answer: %s", shown(transcript, 200), extra={"PIVOX_EVENT": "answer"})
            self.event("answer", transcript=transcript[:1000])

    def is_announcement(self, response_id: str) -> bool:
        """True for the response of the announcement being spoken (no conversation item)."""
        return response_id == self.announcements.speaking


def machine_device_id(path: str = MACHINE_ID) -> str:
    """The device id derived from /etc/machine-id, or from the host name without one."""
    from pivox.control.discovery import device_id_from

    try:
        with open(path) as f:
            return device_id_from(f.read(256))
    except OSError:
        return device_id_from(stdsocket.gethostname())


def socket_path(setting: str) -> str | None:
    """Where the control socket goes: `control.socket` ("auto": the runtime directory)."""
    if setting != "auto":
        return setting or None
    directory = runtime_dir(os.environ)
    if directory is None:
        log.info("no control socket: neither $RUNTIME_DIRECTORY nor $XDG_RUNTIME_DIR is set",
                 extra={"PIVOX_EVENT": "control_socket"})
        return None
    return os.path.join(directory, SOCKET_NAME)
