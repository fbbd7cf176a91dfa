"""The composition root: builds the parts from `Config` and routes events and actions.

The asyncio loop owns the link (`pivox.net.link`), the state machine and every send. PortAudio's
threads touch only `AudioRing` (the speaker) and `loop.call_soon_threadsafe` (the mic);
GPIO edges arrive the same way. Every decision is made by the pure core (`machine`,
`responses`, `gestures`, `turns`, `ring`, `protocol`); this module and `wiring/` join it to
the edges.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pivox.audio.devices import AudioDevices, OpenMicrophone, OpenSpeaker, new_capture
from pivox.audio.playback import Playback
from pivox.audio.wake import earcon
from pivox.config import Config, config_change, load_config
from pivox.core import events as ev
from pivox.core import machine as m
from pivox.core.errors import AuthError, ConfigError, ProtocolError
from pivox.core.led import LedPattern, led_table
from pivox.core.responses import Action, ResponseTracker
from pivox.core.ring import BYTES_PER_MS, AudioRing
from pivox.core.status import status_line
from pivox.core.turns import TurnTracker
from pivox.host.logsafe import shown
from pivox.host.memory import pin_mmap_threshold
from pivox.host.panel import OpenButton, OpenLed, Panel
from pivox.host.systemd import Notifier, install_signals
from pivox.host.waits import cancel_all
from pivox.net.link import Link, endpoint
from pivox.net.secrets import ApiKey, load_api_key, load_mcp_token
from pivox.protocol.provider import Wire
from pivox.skills.registry import TOOL_NAMES
from pivox.skills.timers import Timers
from pivox.wiring.alarms import Alarms
from pivox.wiring.doors import Doors
from pivox.wiring.endings import ReplyEndings
from pivox.wiring.tools import ToolCalls

if TYPE_CHECKING:
    from pivox.skills.mcp import McpBridge

log = logging.getLogger("pivox.daemon")

STOP_TASKS_S = 1.5
"""How long a stop waits for the link, tick, timer and MCP tasks to end after their cancel
(the link's close is bounded at 1 s; `pivox run` exits hard 1.8 s after SIGTERM)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hardware:
    """Factories for the edges, so tests and the demo can swap any of them."""

    open_microphone: OpenMicrophone
    open_speaker: OpenSpeaker
    open_button: OpenButton | None
    open_led: OpenLed | None


def new_machine(config: Config) -> m.DeviceMachine:
    """A fresh state machine for the config's mode."""
    s = config.session
    return m.DeviceMachine(s.mode, double_tap_action=config.button.double_tap_action,
                           listen_s=s.wake_listen_s, follow_up_s=s.follow_up_s)


class Daemon:
    """One pivox device: run() until stop(); reload() re-reads the config file."""

    def __init__(self, config: Config, hardware: Hardware, *, config_path: str | None = None,
                 api_key: ApiKey | None = None, notifier: Notifier | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 on_stop: Callable[[], None] | None = None, timers: Timers | None = None) -> None:
        self.config, self.config_path, self.api_key = config, config_path, api_key
        self.hw, self.clock = hardware, clock
        self.notifier = notifier or Notifier()
        self.ring = AudioRing(config.audio.ring_ms * BYTES_PER_MS)
        self.playback = Playback(self.ring, config.audio.max_reply_s * 1000 * BYTES_PER_MS)
        self.capture = new_capture(config)
        self.machine = new_machine(config)
        self.panel = Panel(config, self.notifier.watchdog_interval())
        self.turns = TurnTracker()
        self.responses = ResponseTracker()
        self.timers = timers or Timers(config.timers)
        self.alarms = Alarms(self, on_rung=lambda ring: self.doors.event(  # the timers' ringing
            "timer_rung", timers=[entry.label or entry.id for entry in ring.entries]))
        self.doors = Doors(self)  # the control socket, MQTT, announcements
        self.audio = AudioDevices(
            hardware.open_speaker, hardware.open_microphone, self.ring,
            on_frame=self._on_mic_frame,
            on_failed=lambda error: self._feed(m.AudioFailed()),
            on_recovered=lambda: self._feed(m.AudioRecovered()), clock=clock)
        self.mcp: McpBridge | None = None
        if config.mcp.servers:  # the bridge's code is loaded only for servers configured
            from pivox.skills.mcp import open_bridge

            self.mcp = open_bridge(config.mcp.servers, load_mcp_token, reserved=TOOL_NAMES,
                                   on_change=lambda: self.link.update_session())
        self.tools = ToolCalls(self, self.mcp)
        self.endings = ReplyEndings(self, cancel_calls=self.tools.cancel_remote,
                                    is_announcement=self.doors.is_announcement)
        self.link = Link(self, self.notifier, clock, tools=self.tools.declared,
                         prompts=self.tools.prompts)
        self.stats = {"bad_events": 0, "turns": 0}
        self._routes: dict[type, Callable[[Any], Awaitable[None] | None]] = {
            ev.AudioDelta: self._on_audio_delta, ev.SessionCreated: self.link.session_created,
            ev.SpeechStarted: lambda _: self._feed(m.SpeechStarted()),
            ev.SpeechStopped: self._on_speech_stopped,
            ev.ResponseCreated: self._on_response_created,
            ev.AudioDone: lambda _: self.playback.finish(),  # a gap after it is no underrun
            ev.ResponseDone: self._on_response_done, ev.FunctionCallDone: self.tools.on_call,
            ev.TranscriptDone: self._on_transcript, ev.InputTranscriptCompleted: self._on_user_said,
            ev.Error: self._on_server_error, ev.GoAway: self.link.go_away,
        }
        """Server event type -> the method that routes it; other events are only logged."""
        self._stop = asyncio.Event()
        self._waiting_since = 0.0
        """When the device last heard from the server or started thinking (monotonic)."""
        self._on_stop = on_stop

    @property
    def _active_response(self) -> str | None:
        """The response the server is generating (tests read it by this name)."""
        return self.responses.live

    @property
    def patterns(self) -> dict[m.State, LedPattern]:
        """The LED pattern of each state (the config's overrides applied)."""
        return self.panel.patterns

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        """Run until stop(); returns the exit code."""
        pin_mmap_threshold()
        install_signals(asyncio.get_running_loop(), self.stop, self.reload)
        self.panel.open(self.config, self.hw.open_button, self.hw.open_led, self._on_button_edge,
                        self.machine.state)
        self._feed(m.Booted())
        self.timers.load()
        await self.audio.open(self.config)
        await self.doors.start()
        self.notifier.ready(self._status_line())
        log.info("pivox running in %s mode", self.config.session.mode,
                 extra={"PIVOX_STATE": self.machine.state.value})
        tasks = [asyncio.create_task(self.link.run(), name="link"),
                 asyncio.create_task(self._tick_loop(), name="tick"),
                 asyncio.create_task(self.alarms.run(), name="timers")]
        if self.mcp is not None:
            tasks.append(asyncio.create_task(self.mcp.run(), name="mcp"))
        await self._stop.wait()
        self.notifier.stopping()
        log.info("stopping", extra={"PIVOX_EVENT": "stop"})
        # devices abort (never drain) while the link closes: both bounded, side by side
        closing = asyncio.create_task(self.audio.close())
        errors = await cancel_all(tasks, STOP_TASKS_S)
        await closing
        await self.doors.close()
        self.panel.close()
        if errors:  # a task that failed before the stop fails run(), after everything closed
            raise errors[0]
        return 0

    def stop(self) -> None:
        """Ask run() to finish: the link and the devices close within about a second."""
        if not self._stop.is_set() and self._on_stop is not None:
            self._on_stop()
        self._stop.set()

    def reload(self) -> None:
        """Re-read the config file; keep the old config when the new one is invalid."""
        if self.config_path is None:
            log.warning("reload asked, but no config file to re-read")
            return
        self.notifier.reloading()
        try:  # everything that can refuse the new config runs before anything changes
            new = load_config(self.config_path)
            new_key = load_api_key(new.server)
            patterns = led_table(new.led.patterns)
            change = config_change(self.config, new, key_changed=self.api_key != new_key)
            capture = new_capture(new) if change.capture else None  # a broken wake word model
        except ConfigError as exc:
            log.error("reload rejected, keeping the running config: %s", exc,
                      extra={"PIVOX_EVENT": "reload"})
            self.notifier.ready(f"reload rejected: {exc.key or 'config'}; {self._status_line()}")
            return
        self.config, self.api_key = new, new_key
        self.panel.configure(new, patterns)
        if change.machine:  # a new mode is a new machine: it starts over
            self.machine = new_machine(new)
            self._feed(m.Booted())
            if self.audio.failed_since is not None:
                self._feed(m.AudioFailed())
        if change.session:
            self.link.reconnect(resume=False)  # a new configuration is a new session
        if capture is not None:
            self.capture = capture
        if change.devices:
            self.audio.reopen(new)
        self.tools.reloaded(new)
        log.info("config reloaded from %s", self.config_path, extra={"PIVOX_EVENT": "reload"})
        self.notifier.ready(self._status_line())  # READY=1 ends systemd's "reloading" state

    # ------------------------------------------------------------------ state

    def feed(self, inp: Any) -> None:
        """Hand one input to the machine (the doors' commands arrive here)."""
        self._feed(inp)

    def _feed(self, inp: Any) -> None:
        """Hand one input to the machine, act on its actions, log the transition."""
        before = self.machine.state
        actions = self.machine.handle(inp, self.clock())
        after = self.machine.state
        self.audio.hop_frames = self.capture.frames_per_hop(self.machine)
        if after is not before:
            name = type(inp).__name__
            log.info("%s -> %s (%s)", before.value, after.value, name,
                     extra=self.log_fields(PIVOX_STATE=after.value, PIVOX_EVENT=name))
            if after is m.State.THINKING:
                self._waiting_since = self.clock()
            self.panel.show(after)
            self.notifier.status(self._status_line())
        for action in actions:
            self._act(action)

    def _act(self, action: Any) -> None:
        if isinstance(action, m.ClearInput):
            self.link.send(ev.InputAudioClear())
        elif isinstance(action, m.SendPreroll):
            pcm = self.capture.drain_preroll()
            if pcm:
                self.link.send(ev.InputAudioAppend(audio=pcm))
        elif isinstance(action, m.PlayEarcon) and self.config.session.wake_earcon:
            self.playback.write(earcon(), "earcon", "earcon")
            self.playback.finish()  # the silence after it is no underrun
        elif isinstance(action, m.CommitInput):
            self.turns.start(self.clock(), self.ring.underruns)
            self.link.send(ev.InputAudioCommit())
            self.link.send(ev.ResponseCreate())
        elif isinstance(action, m.Interrupt):
            self.endings.barge_in()
        elif isinstance(action, m.RunAction) and action.name == "repeat":
            self.link.send(ev.UserText(text="Please repeat your last answer."))
            self.link.send(ev.ResponseCreate())
        elif isinstance(action, m.StartRinging):
            self.alarms.start()
        elif isinstance(action, m.StopRinging):
            self.alarms.stop()

    def carry_out(self, actions: list[Action]) -> None:
        """The response tracker's decisions: client events to send, machine inputs to feed."""
        for action in actions:
            if isinstance(action, m.ResponseFinished):
                self._feed(action)
            else:
                self.link.send(action)

    def _status_line(self) -> str:
        host = endpoint(self.config, None).host
        return status_line(self.machine.state, host, self.audio.error)

    def log_fields(self, **fields: Any) -> dict[str, Any]:
        """The journal fields of a log line: these, the session's id and the turn's."""
        if self.link.session_id:
            fields.setdefault("SESSION_ID", self.link.session_id)
        if self.turns.current is not None:
            fields.setdefault("TURN_ID", self.turns.current.turn_id)
        return fields

    # ------------------------------------------------------------------ hardware

    def _on_button_edge(self, pressed: bool, at: float) -> None:
        """A debounced button edge, delivered on the loop by the GPIO adapter."""
        for gesture in self.panel.gestures.edge(pressed, at):
            self._feed(gesture)

    def _on_mic_frame(self, mic: bytes, far: bytes) -> None:
        """One mic frame and its far-end reference, on the loop: through the capture pipeline."""
        if self.machine.state is m.State.MUTED:
            return
        streaming = self.machine.streaming and self.link.up
        captured = self.capture.feed(mic, far, streaming=streaming)
        self.audio.hop_frames = self.capture.frames_per_hop(self.machine)  # the gate may stir
        if captured.append is not None:
            self.link.send(ev.InputAudioAppend(audio=captured.append))
        if captured.woke:  # after the frame went into the pre-roll the turn starts with
            self._feed(m.WakeWordDetected())
            self.doors.event("wake")

    # ------------------------------------------------------------------ tick

    async def _tick_loop(self) -> None:
        """Gestures that need time, drain detection, LED, watchdog, audio health."""
        while True:
            now = self.clock()
            for gesture in self.panel.tick(now):
                self._feed(gesture)
            self.playback.pump()
            self.alarms.tick()
            self.endings.check_drained(now)
            self.endings.check_timeout(now, self._waiting_since)
            if self.machine.listen_expired(now):
                self._feed(m.ListenTimeout())
            self.link.check_renewal(now)
            self.doors.tick(now)
            self.audio.check(now, self.config)
            self.notifier.watchdog(now, self.audio.alive)
            await self.panel.wait(self.machine.state, self.quiet())

    # ------------------------------------------------------------------ link

    def link_up(self) -> None:
        """Link: the session is open."""
        self.tools.session_opened()
        self._feed(m.Connected())

    def link_down(self, *, auth: bool) -> None:
        """Link: the session is gone (`auth`: the server refused the key); what it was
        saying or running belongs to a session that no longer exists."""
        self.responses.link_dropped()
        self.tools.cancel_remote()
        self.turns.finish()
        self._feed(m.AuthFailed() if auth else m.Disconnected())

    def quiet(self) -> bool:
        """Link: nothing is being said, so the connection may be renewed now."""
        return self.machine.quiet

    def idle_locally(self) -> bool:
        """Link: idle in wake-word mode, nothing sent, so a session the server ends costs
        nothing and is reopened quietly."""
        return self.machine.idle_locally

    # ------------------------------------------------------------------ receive

    async def on_frame(self, frame: bytes, wire: Wire) -> None:
        """Link: decode one frame, audio deltas by the fast path, anything else in full."""
        self._waiting_since = self.clock()
        chunk = wire.parse_audio(frame)
        if chunk is not None:
            response_id, item_id = chunk.response_id, chunk.item_id
            if not self._admit(response_id, item_id):
                if chunk.is_plain():
                    return  # dropped undecoded
            elif self.playback.queue(chunk):
                self._audio_arrived(response_id, item_id)
                return
        # not a plain audio delta after all, or other events (Gemini: several per frame)
        for event in wire.decode(frame):
            if isinstance(event, ProtocolError):
                self._bad_event(event)
            else:
                await self._dispatch(event)

    def _bad_event(self, error: ProtocolError) -> None:
        self.stats["bad_events"] += 1
        log.warning("skipped a malformed server event: %s", error,
                    extra=self.log_fields(PIVOX_EVENT=error.event_type or "unreadable"))

    async def _dispatch(self, event: ev.ServerEvent) -> None:
        name = type(event).__name__
        log.debug("server: %s", name, extra=self.log_fields(PIVOX_EVENT=name))
        route = self._routes.get(type(event))
        if route is not None and (waiting := route(event)) is not None:
            await waiting

    def _admit(self, response_id: str, item_id: str) -> bool:
        """May this delta play: its response was not cancelled and has room for its item."""
        return not self.responses.cancelled(response_id) and self.playback.admit(
            response_id, item_id)

    def _on_audio_delta(self, event: ev.AudioDelta) -> None:
        """Queue reply audio (ring, then backlog) without waiting: the receiver keeps reading."""
        if self._admit(event.response_id, event.item_id):
            self._audio_arrived(event.response_id, event.item_id)
            self.playback.write(event.audio, event.item_id, event.response_id)

    def _audio_arrived(self, response_id: str, item_id: str) -> None:
        """Note reply audio: the first of a response starts the speaking state."""
        started = self.responses.audio_arrived(response_id)
        self.turns.audio_arrived(self.clock(), response_id, item_id)
        if started is not None:
            self._feed(started)

    def _on_response_created(self, event: ev.ResponseCreated) -> None:
        self.responses.created(event.response_id, self.doors.origin(event, self.clock()))
        self.alarms.on_response_created()

    def _on_speech_stopped(self, event: ev.SpeechStopped) -> None:
        self.turns.start(self.clock(), self.ring.underruns)
        self._feed(m.SpeechStopped())

    def _on_response_done(self, event: ev.ResponseDone) -> None:
        self.playback.finish()
        if event.status not in ("completed", "cancelled") and not self.responses.cancelled(
                event.response_id):
            log.warning("response %s ended %s: %s", event.response_id, event.status,
                        shown(event.response.get("status_details")),  # bounded, never raises
                        extra=self.log_fields(RESPONSE_ID=event.response_id,
                                              PIVOX_EVENT="response_done"))
        self.carry_out(self.responses.done(event.response_id, event.status))

    def _on_transcript(self, event: ev.TranscriptDone) -> None:
        log.info("assistant: %s", event.transcript,
                 extra=self.log_fields(RESPONSE_ID=event.response_id, PIVOX_EVENT="transcript"))

    def _on_user_said(self, event: ev.InputTranscriptCompleted) -> None:
        log.info("user: %s", event.transcript,
                 extra=self.log_fields(ITEM_ID=event.item_id, PIVOX_EVENT="input_transcript"))
        self.doors.on_user_transcript(event.transcript, self.clock())

    def _on_server_error(self, event: ev.Error) -> None:
        info = event.error
        if info.code == "invalid_api_key":
            raise AuthError(f"server said invalid_api_key: {info.message}")
        level = logging.DEBUG if info.code == "response_cancel_not_active" else logging.WARNING
        log.log(level, "server error %s/%s: %s", info.type, info.code, info.message,
                extra=self.log_fields(PIVOX_EVENT="error"))

    # ------------------------------------------------------------------ tool host

    def set_volume(self, level: int) -> None:
        """Tool host: change the speaker volume."""
        self.audio.set_volume(level)

    def set_muted(self, muted: bool) -> None:
        """Tool host: mute or unmute the microphone."""
        self._feed(m.MuteRequested(muted=muted))
