"""The composition root: builds the parts from `Config` and routes events and actions.

The asyncio loop owns the link (`pivox.net.link`), the state machine and every send. PortAudio's
threads touch only `AudioRing` (the speaker) and `loop.call_soon_threadsafe` (the mic);
GPIO edges arrive the same way. Every decision is made by the pure core
(`machine`, `gestures`, `protocol`, `ring`, `turns`); this module wires it to the edges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pivox.audio.capture import Capture
from pivox.audio.devices import AudioDevices, OpenMicrophone, OpenSpeaker, open_canceller
from pivox.audio.playback import Playback
from pivox.audio.wake import earcon, wake_gate
from pivox.config import Config, load_config
from pivox.core import machine as m
from pivox.core.errors import AuthError, ConfigError, DeviceError, ProtocolError
from pivox.core.events import (
    AudioDelta,
    AudioDone,
    Error,
    FunctionCallDone,
    FunctionCallOutput,
    GoAway,
    InputAudioAppend,
    InputAudioClear,
    InputAudioCommit,
    InputTranscriptCompleted,
    ItemTruncate,
    ResponseCancel,
    ResponseCreate,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    SessionConfig,
    SessionCreated,
    SpeechStarted,
    SpeechStopped,
    TranscriptDone,
    UserText,
)
from pivox.core.gestures import ButtonGestures
from pivox.core.led import DEFAULT_PATTERNS, LedPattern, parse_pattern
from pivox.core.preroll import PreRoll
from pivox.core.ring import AudioRing
from pivox.core.turns import TurnTracker
from pivox.host.logsafe import shown
from pivox.host.memory import pin_mmap_threshold
from pivox.host.optional import MissingDependency
from pivox.host.systemd import Notifier
from pivox.net.link import Link, endpoint, session_config
from pivox.net.secrets import ApiKey, load_api_key, load_mcp_token
from pivox.protocol.fastpath import decode_audio, decode_into_ring
from pivox.protocol.provider import Wire
from pivox.skills.mcp import McpBridge
from pivox.skills.registry import TOOL_NAMES, call_tool

log = logging.getLogger("pivox.daemon")

BYTES_PER_MS = 48
"""PCM16 mono at 24 kHz."""
TICK_S = 0.02
SPEAKING_TICK_S = 0.05
IDLE_TICK_S = 0.1
ANIMATED = ("blink", "pulse")


class Indicator(Protocol):
    """An LED (real, simulated or absent)."""

    def show(self, pattern: LedPattern, state: str) -> None: ...
    def tick(self, now: float) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Hardware:
    """Factories for the edges, so tests and the demo can swap any of them."""

    open_microphone: OpenMicrophone
    open_speaker: OpenSpeaker
    open_button: Callable[[Config, Callable[[bool, float], None]], Any] | None
    open_led: Callable[[Config], Indicator] | None


def new_machine(config: Config) -> m.DeviceMachine:
    """A fresh state machine for the config's mode."""
    s = config.session
    return m.DeviceMachine(s.mode, double_tap_action=config.button.double_tap_action,
                           listen_s=s.wake_listen_s, follow_up_s=s.follow_up_s)


def led_patterns(config: Config) -> dict[m.State, LedPattern]:
    """The state → LED table, with the config's overrides applied."""
    table = dict(DEFAULT_PATTERNS)
    for state_name, text in config.led.patterns.items():
        table[m.State(state_name)] = parse_pattern(text)
    return table


class Daemon:
    """One pivox device: run() until stop(); reload() re-reads the config file."""

    def __init__(
        self,
        config: Config,
        hardware: Hardware,
        *,
        config_path: str | None = None,
        api_key: ApiKey | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.api_key = api_key
        self.hw = hardware
        self.notifier = notifier or Notifier()
        self.clock = clock
        self.ring = AudioRing(config.audio.ring_ms * BYTES_PER_MS)
        self.playback = Playback(self.ring, config.audio.max_reply_s * 1000 * BYTES_PER_MS)
        self.capture = self._capture()
        self.machine = new_machine(config)
        self.gestures = self._gestures()
        self.patterns = led_patterns(config)
        self.turns = TurnTracker()
        self.audio = AudioDevices(
            hardware.open_speaker, hardware.open_microphone, self.ring,
            on_frame=self._on_mic_frame, muted=lambda: self.machine.muted,
            on_failed=lambda error: self._feed(m.AudioFailed()),
            on_recovered=lambda: self._feed(m.AudioRecovered()), clock=clock,
        )
        self.button: Any = None
        self.led: Indicator | None = None
        self.link = Link(self, self.notifier, clock)
        self.mcp = self._mcp_bridge()
        self._remote_calls: set[asyncio.Task[None]] = set()
        self._followup_owed = False
        """A response that called MCP tools is done: `response.create` once their outputs are in."""
        self.stats = {"bad_events": 0, "turns": 0}
        self._stop = asyncio.Event()
        self._active_response: str | None = None
        self._playing_response: str | None = None
        self._cancelled: deque[str] = deque(maxlen=32)
        self._tool_followup = False
        self._waiting_since = 0.0
        """When the device last heard from the server or started thinking (monotonic)."""
        self._last_ping = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_stop = on_stop
        self._silencing: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        """Run until stop(); returns the exit code."""
        self._loop = asyncio.get_running_loop()
        pin_mmap_threshold()
        self._install_signals()
        self._open_gpio()
        self._feed(m.Booted())
        await self.audio.open(self.config)
        self.notifier.ready(self._status_line())
        log.info("pivox running in %s mode", self.config.session.mode,
                 extra={"PIVOX_STATE": self.machine.state.value})
        tasks = [
            asyncio.create_task(self.link.run(), name="link"),
            asyncio.create_task(self._tick_loop(), name="tick"),
        ]
        if self.mcp is not None:
            tasks.append(asyncio.create_task(self.mcp.run(), name="mcp"))
        await self._stop.wait()
        self.notifier.stopping()
        log.info("stopping", extra={"PIVOX_EVENT": "stop"})
        # devices abort (never drain) while the link closes: both bounded, side by side
        closing = asyncio.create_task(self.audio.close())
        tasks += self._silencing
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await closing
        await self._shutdown()
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
            patterns = led_patterns(new)
        except ConfigError as exc:
            log.error("reload rejected, keeping the running config: %s", exc,
                      extra={"PIVOX_EVENT": "reload"})
            self.notifier.ready(f"reload rejected: {exc.key or 'config'}; {self._status_line()}")
            return
        old, old_key = self.config, self.api_key
        self.config, self.api_key = new, new_key
        self.patterns = patterns
        self.gestures = self._gestures()
        key_changed = (old_key and old_key.reveal()) != (new_key and new_key.reveal())
        if (old.session.mode, old.button.double_tap_action) != (
                new.session.mode, new.button.double_tap_action):
            # a new mode is a new machine: it starts over, and so does the session
            self.machine = new_machine(new)
            self._feed(m.Booted())
            if self.audio.failed_since is not None:
                self._feed(m.AudioFailed())
            key_changed = True
        if (old.server, old.gemini, old.session) != (new.server, new.gemini, new.session) or (
                key_changed):
            self.link.reconnect(resume=False)  # a new configuration is a new session
        if (old.audio, old.session.mode, old.session.wake_word) != (
                new.audio, new.session.mode, new.session.wake_word):
            self.capture = self._capture()
        if old.audio != new.audio:
            self.audio.reopen(new)
        if old.mcp != new.mcp:
            log.warning("[mcp] changed: restart pivox to apply it", extra={"PIVOX_EVENT": "reload"})
        log.info("config reloaded from %s", self.config_path, extra={"PIVOX_EVENT": "reload"})
        self.notifier.ready(self._status_line())  # READY=1 ends systemd's "reloading" state

    def _mcp_bridge(self) -> McpBridge | None:
        """The MCP bridge when servers are configured (their tokens read now), else None."""
        servers = self.config.mcp.servers
        if not servers:
            return None
        tokens = {s.name: load_mcp_token(s, index) for index, s in enumerate(servers)}
        try:
            return McpBridge(servers, tokens, reserved=TOOL_NAMES,
                             on_change=self.link.resend_session)
        except MissingDependency as exc:
            log.error("MCP servers are configured but %s; running without them", exc,
                      extra={"PIVOX_EVENT": "mcp_missing"})
            return None

    def _install_signals(self) -> None:
        assert self._loop is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self.stop)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            self._loop.add_signal_handler(signal.SIGHUP, self.reload)

    async def _shutdown(self) -> None:
        if self.led is not None:
            self.led.show(LedPattern(kind="off"), "stopped")
            self.led.close()
        if self.button is not None:
            self.button.close()

    # ------------------------------------------------------------------ state

    def _gestures(self) -> ButtonGestures:
        """The recognizer; in push-to-talk a long hold is a long utterance, not a mute."""
        b = self.config.button
        ptt = self.config.session.mode == "push_to_talk"
        return ButtonGestures(
            debounce_ms=b.debounce_ms,
            min_hold_ms=b.min_hold_ms,
            double_tap_ms=b.double_tap_ms,
            long_press_ms=None if ptt else b.long_press_ms,
        )

    def _capture(self) -> Capture:
        """The mic pipeline the config asks for (echo canceller when on, the wake word in
        wake_word mode, fresh pre-roll)."""
        a, s = self.config.audio, self.config.session
        return Capture(PreRoll(a.preroll_ms * BYTES_PER_MS), canceller=open_canceller(a),
                       gate=wake_gate(s.mode, s.wake_word, s.wake_cutoff))

    def _feed(self, inp: Any) -> None:
        """Hand one input to the machine, act on its actions, log the transition."""
        before = self.machine.state
        actions = self.machine.handle(inp, self.clock())
        after = self.machine.state
        if after is not before:
            name = type(inp).__name__
            log.info("%s -> %s (%s)", before.value, after.value, name,
                     extra=self._fields(PIVOX_STATE=after.value, PIVOX_EVENT=name))
            if after is m.State.THINKING:
                self._waiting_since = self.clock()
            if self.led is not None:
                self.led.show(self.patterns[after], after.value)
            self.notifier.status(self._status_line())
        for action in actions:
            self._act(action)

    def _act(self, action: Any) -> None:
        if isinstance(action, m.ClearInput):
            self.link.send(InputAudioClear())
        elif isinstance(action, m.SendPreroll):
            pcm = self.capture.drain_preroll()
            if pcm:
                self.link.send(InputAudioAppend(audio=pcm))
        elif isinstance(action, m.PlayEarcon) and self.config.session.wake_earcon:
            self.playback.write(earcon(), "earcon", "earcon")
            self.playback.finish()  # the silence after it is no underrun
        elif isinstance(action, m.CommitInput):
            self.turns.start(self.clock(), self.ring.underruns)
            self.link.send(InputAudioCommit())
            self.link.send(ResponseCreate())
        elif isinstance(action, m.Interrupt):
            self._barge_in()
        elif isinstance(action, m.RunAction):
            self._run_action(action.name)

    def _run_action(self, name: str) -> None:
        if name == "repeat":
            self.link.send(UserText(text="Please repeat your last answer."))
            self.link.send(ResponseCreate())
        elif name != "none":
            log.debug("double-tap action %s is handled by the state machine", name)

    def _status_line(self) -> str:
        state = self.machine.state
        host = endpoint(self.config, None).host
        if state is m.State.AUTH_ERROR:
            return "auth error: check the API key"
        if state is m.State.AUDIO_ERROR:
            return f"audio error: {self.audio.error}"
        if state in (m.State.OFFLINE, m.State.CONNECTING, m.State.BOOTING):
            return f"{state.value.replace('_', ' ')}, server {host}"
        return f"{state.value.replace('_', ' ')}, connected to {host}"

    def _fields(self, **fields: Any) -> dict[str, Any]:
        if self.link.session_id:
            fields.setdefault("SESSION_ID", self.link.session_id)
        if self.turns.current is not None:
            fields.setdefault("TURN_ID", self.turns.current.turn_id)
        return fields

    # ------------------------------------------------------------------ hardware

    def _open_gpio(self) -> None:
        if self.hw.open_button is not None and self.config.button.enabled:
            try:
                self.button = self.hw.open_button(self.config, self._on_button_edge)
            except DeviceError as exc:
                log.warning("no button: %s", exc, extra={"PIVOX_EVENT": "gpio"})
        if self.hw.open_led is not None and self.config.led.enabled:
            try:
                self.led = self.hw.open_led(self.config)
                self.led.show(self.patterns[self.machine.state], self.machine.state.value)
            except DeviceError as exc:
                log.warning("no LED: %s", exc, extra={"PIVOX_EVENT": "gpio"})

    def _on_button_edge(self, pressed: bool, at: float) -> None:
        """A debounced button edge, delivered on the loop by the GPIO adapter."""
        for gesture in self.gestures.edge(pressed, at):
            self._feed(gesture)

    def _on_mic_frame(self, mic: bytes, far: bytes) -> None:
        """One mic frame and its far-end reference, on the loop: through the capture pipeline."""
        if self.machine.state is m.State.MUTED:
            return
        streaming = self.machine.streaming and self.link.up
        captured = self.capture.feed(mic, far, streaming=streaming)
        if captured.append is not None:
            self.link.send(InputAudioAppend(audio=captured.append))
        if captured.woke:  # after the frame went into the pre-roll the turn starts with
            self._feed(m.WakeWordDetected())

    # ------------------------------------------------------------------ tick

    def _tick_interval(self) -> float:
        """20 ms while the LED animates or the button is held, 50 ms while speaking, else 100."""
        if self.gestures.pressed or (self.led is not None and self.patterns[
                self.machine.state].kind in ANIMATED):
            return TICK_S
        return SPEAKING_TICK_S if self.machine.state is m.State.SPEAKING else IDLE_TICK_S

    async def _tick_loop(self) -> None:
        """Gestures that need time, drain detection, LED, watchdog, audio health."""
        while True:
            now = self.clock()
            if self.button is not None:
                self.button.sample()
            for gesture in self.gestures.poll(now):
                self._feed(gesture)
            self.playback.pump()
            self._check_playback(now)
            self._check_reply_timeout(now)
            if (self.machine.mode == "wake_word" and self.machine.state is m.State.LISTENING
                    and now >= self.machine.listen_until):
                self._feed(m.ListenTimeout())
            self.link.check_renewal(now)
            if self.led is not None:
                self.led.tick(now)
            self.audio.check(now, self.config)
            self._watchdog(now)
            await asyncio.sleep(self._tick_interval())

    def _check_playback(self, now: float) -> None:
        turn = self.turns.current
        if turn is not None and turn.first_audible is None and turn.items and any(
            self.ring.played(item) for item in turn.items
        ):
            self.turns.heard(now)
        if (self.machine.state is m.State.SPEAKING and self._active_response is None
                and self.ring.available == 0 and not self.playback.pending):
            self._feed(m.Drained())
            if self.machine.state is not m.State.SPEAKING:
                self._finish_turn()

    def _check_reply_timeout(self, now: float) -> None:
        """THINKING with no word from the server for too long: give the reply up."""
        timeout = self.config.session.response_timeout_s
        if self.machine.state is not m.State.THINKING or now - self._waiting_since < timeout:
            return
        response_id = self._active_response
        log.warning("no reply after %.0f s of server silence; giving it up", timeout,
                    extra=self._fields(RESPONSE_ID=response_id, PIVOX_EVENT="reply_timeout"))
        if response_id is not None:
            self._cancelled.append(response_id)
            self.link.send(ResponseCancel(response_id=response_id))
        self._active_response = None
        self._tool_followup = False
        self._cancel_remote_calls()
        self.turns.finish()
        self._feed(m.ResponseFinished(response_id=response_id or "", status="timeout"))

    def _finish_turn(self) -> None:
        turn = self.turns.finish()
        self._playing_response = None
        if turn is None or turn.response_id is None:
            return
        underruns = self.ring.underruns - turn.underruns_at_start
        self.stats["turns"] += 1
        log.info(
            "turn %d done: first audio after %s ms, audible after %s ms, %d underruns",
            turn.turn_id, turn.latency_ms(), turn.audible_ms(), underruns,
            extra=self._fields(
                TURN_ID=turn.turn_id, RESPONSE_ID=turn.response_id, ITEM_ID=turn.items[0],
                PIVOX_EVENT="turn_done",
                PIVOX_LATENCY_MS=turn.latency_ms(), PIVOX_AUDIBLE_MS=turn.audible_ms(),
                PIVOX_UNDERRUNS=underruns,
            ),
        )
        for item in turn.items:
            self.ring.forget(item)

    def _watchdog(self, now: float) -> None:
        interval = self.notifier.watchdog_interval()
        if interval is None or now - self._last_ping < interval:
            return
        if self.audio.alive(now):
            self.notifier.watchdog_ping()
            self._last_ping = now

    # ------------------------------------------------------------------ link

    def link_up(self) -> None:
        """Link: the session is open."""
        if self.mcp is not None:
            self.mcp.refresh()  # a changed list reaches the session by resend_session
        self._cancel_remote_calls()  # calls of the session before this one answer nobody
        self._feed(m.Connected())

    def session_config(self) -> SessionConfig:
        """Link: the session to ask for, the MCP servers' tools and prompts included."""
        base = session_config(self.config)
        return base if self.mcp is None else self.mcp.extend(base)

    def link_down(self, *, auth: bool) -> None:
        """Link: the session is gone (`auth`: the server refused the key)."""
        self._drop_playback()
        self._feed(m.AuthFailed() if auth else m.Disconnected())

    def quiet(self) -> bool:
        """Link: nothing is being said, so the connection may be renewed now."""
        state = self.machine.state
        return state in (m.State.IDLE, m.State.MUTED) or (
            state is m.State.LISTENING and self.machine.mode == "always_on")

    def idle_locally(self) -> bool:
        """Link: idle in wake-word mode, nothing sent, so a session the server ends costs
        nothing and is reopened quietly."""
        return self.machine.state is m.State.IDLE and self.config.session.mode == "wake_word"

    def _drop_playback(self) -> None:
        """The link is gone: what is still queued belongs to a session that no longer exists."""
        if self._playing_response is not None:
            self._cancelled.append(self._playing_response)
        self._active_response = self._playing_response = None
        self._tool_followup = False
        self._cancel_remote_calls()
        self.turns.finish()

    # ------------------------------------------------------------------ receive

    async def on_frame(self, frame: bytes, wire: Wire) -> None:
        """Link: decode one frame, audio deltas by the fast path, anything else in full."""
        self._waiting_since = self.clock()
        chunk = wire.parse_audio(frame)
        if chunk is not None:
            response_id, item_id = chunk.response_id, chunk.item_id
            if (response_id in self._cancelled or not self.playback.admit(
                    response_id, item_id)) and chunk.is_plain():
                return
            if self.playback.direct:  # nothing waits: decode straight into the ring
                rest = decode_into_ring(chunk, self.ring)  # the PCM the ring had no room for
                if rest is not None:
                    self._audio_arrived(response_id, item_id)
                    self.playback.hold(rest, item_id, response_id)
                    return
            elif (pcm := decode_audio(chunk)) is not None:
                self._audio_arrived(response_id, item_id)
                self.playback.write(pcm, item_id, response_id)
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
                    extra=self._fields(PIVOX_EVENT=error.event_type or "unreadable"))

    async def _dispatch(self, event: ServerEvent) -> None:
        log.debug("server: %s", type(event).__name__,
                  extra=self._fields(PIVOX_EVENT=type(event).__name__))
        if isinstance(event, AudioDelta):
            if event.response_id not in self._cancelled:
                await self._play(event.response_id, event.item_id, event.audio)
        elif isinstance(event, SessionCreated):
            self.link.session_created(str(event.session.get("id") or "") or None)
            log.info("session %s created", self.link.session_id,
                     extra=self._fields(PIVOX_EVENT="session_created"))
        elif isinstance(event, SpeechStarted):
            self._feed(m.SpeechStarted())
        elif isinstance(event, SpeechStopped):
            self.turns.start(self.clock(), self.ring.underruns)
            self._feed(m.SpeechStopped())
        elif isinstance(event, ResponseCreated):
            self._active_response = event.response_id
        elif isinstance(event, AudioDone | ResponseDone):
            self.playback.finish()  # what is queued still plays; a gap after it is no underrun
            if isinstance(event, ResponseDone):
                self._response_done(event)
        elif isinstance(event, FunctionCallDone):
            self._call_tool(event)
        elif isinstance(event, TranscriptDone):
            log.info("assistant: %s", event.transcript,
                     extra=self._fields(RESPONSE_ID=event.response_id, PIVOX_EVENT="transcript"))
        elif isinstance(event, InputTranscriptCompleted):
            log.info("user: %s", event.transcript,
                     extra=self._fields(ITEM_ID=event.item_id, PIVOX_EVENT="input_transcript"))
        elif isinstance(event, Error):
            self._server_error(event)
        elif isinstance(event, GoAway):
            left_s = (event.time_left_ms or 0) / 1000
            log.info("server says goAway, %.1f s left; renewing at the first quiet moment",
                     left_s, extra=self._fields(PIVOX_EVENT="go_away"))
            self.link.renew_within(left_s / 2)

    def _response_done(self, event: ResponseDone) -> None:
        if self._active_response == event.response_id:
            self._active_response = None
        if event.response_id in self._cancelled:
            return
        if event.status not in ("completed", "cancelled"):
            log.warning("response %s ended %s: %s", event.response_id, event.status,
                        shown(event.response.get("status_details")),  # bounded, never raises
                        extra=self._fields(RESPONSE_ID=event.response_id,
                                           PIVOX_EVENT="response_done"))
        if self._remote_calls and (self._tool_followup or self._followup_owed):
            self._tool_followup, self._followup_owed = False, True
            return  # MCP calls still run: response.create when their outputs are in
        if self._tool_followup:
            self._tool_followup = False
            self.link.send(ResponseCreate())
            if self.machine.state is m.State.THINKING:
                return  # the spoken answer to the tool's result is still to come
        self._feed(m.ResponseFinished(response_id=event.response_id, status=event.status))

    def _call_tool(self, event: FunctionCallDone) -> None:
        if self.mcp is not None and self.mcp.owns(event.name):
            task = asyncio.create_task(self._call_remote(event), name=f"mcp-{event.call_id}")
            self._remote_calls.add(task)
            task.add_done_callback(self._remote_calls.discard)
            self._tool_followup = True
            return
        output = call_tool(self, tuple(self.config.session.tools), event.name, event.arguments)
        log.info("tool %s(%s) -> %s", event.name, event.arguments, output,
                 extra=self._fields(RESPONSE_ID=event.response_id, PIVOX_EVENT="tool_call"))
        self.link.send(FunctionCallOutput(call_id=event.call_id, output=output))
        self._tool_followup = True

    async def _call_remote(self, event: FunctionCallDone) -> None:
        """An MCP tool call, off the receive path; its output is sent when it comes."""
        assert self.mcp is not None
        output = await self.mcp.call(event.name, event.arguments)
        log.info("tool %s(%s) -> %s", event.name, event.arguments, output,
                 extra=self._fields(RESPONSE_ID=event.response_id, PIVOX_EVENT="tool_call"))
        self.link.send(FunctionCallOutput(call_id=event.call_id, output=output))
        self._remote_calls.discard(asyncio.current_task())  # type: ignore[arg-type]
        if self._followup_owed and not self._remote_calls:
            self._followup_owed = False
            self.link.send(ResponseCreate())

    def _cancel_remote_calls(self) -> None:
        """Barge-in or link drop: MCP calls in flight are cancelled, their outputs never sent."""
        for task in self._remote_calls:
            task.cancel()
        self._remote_calls.clear()
        self._followup_owed = False

    def _server_error(self, event: Error) -> None:
        info = event.error
        if info.code == "invalid_api_key":
            raise AuthError(f"server said invalid_api_key: {info.message}")
        level = logging.DEBUG if info.code == "response_cancel_not_active" else logging.WARNING
        log.log(level, "server error %s/%s: %s", info.type, info.code, info.message,
                extra=self._fields(PIVOX_EVENT="error"))

    async def _play(self, response_id: str, item_id: str, pcm: bytes) -> None:
        """Queue reply audio (ring, then backlog) without waiting: the receiver keeps reading."""
        if self.playback.admit(response_id, item_id):
            self._audio_arrived(response_id, item_id)
            self.playback.write(pcm, item_id, response_id)

    def _audio_arrived(self, response_id: str, item_id: str) -> None:
        """Note reply audio: the first of a response starts the speaking state."""
        if self._playing_response != response_id:
            self._playing_response = response_id
            self.turns.audio_arrived(self.clock(), response_id, item_id)
            self._feed(m.AudioStarted(response_id=response_id))
        elif self.turns.current is not None:
            self.turns.audio_arrived(self.clock(), response_id, item_id)

    # ------------------------------------------------------------------ barge-in

    def _barge_in(self) -> None:
        """Silence the speaker now, cancel the reply and tell the server what was heard."""
        response_id = self._playing_response or self._active_response
        playing = self._playing_response
        item_id = self.ring.current_item
        self.playback.clear()
        self._cancel_remote_calls()
        if response_id is None:
            return
        self._cancelled.append(response_id)
        self.link.send(ResponseCancel(response_id=response_id))
        truncate = item_id if item_id is not None and playing == response_id else None
        self._playing_response = self._active_response = None
        self.turns.finish()
        task = asyncio.create_task(self._silence(playing is not None, response_id, truncate))
        self._silencing.add(task)
        task.add_done_callback(self._silencing.discard)

    async def _silence(self, playing: bool, response_id: str, item_id: str | None) -> None:
        """Flush the speaker off the loop if it plays, then truncate `item_id` at what was heard."""
        # what was handed to the sound card but never heard; nothing to drop if nothing plays
        unheard = await self.audio.flush_speaker() if playing else 0
        if item_id is None:
            return
        played_ms = max(0, self.ring.played(item_id) - unheard) // BYTES_PER_MS
        self.link.send(ItemTruncate(item_id=item_id, content_index=0, audio_end_ms=played_ms))
        log.info("barge-in: cancelled %s after %d ms of %s", response_id, played_ms, item_id,
                 extra=self._fields(RESPONSE_ID=response_id, ITEM_ID=item_id,
                                    PIVOX_EVENT="barge_in"))

    # ------------------------------------------------------------------ tool host

    def set_volume(self, level: int) -> None:
        """Tool host: change the speaker volume."""
        self.audio.set_volume(level)

    def set_muted(self, muted: bool) -> None:
        """Tool host: mute or unmute the microphone."""
        self._feed(m.MuteRequested(muted=muted))
