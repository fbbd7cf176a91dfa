"""The device state machine: every state, every transition, and the actions each asks for.

Pure (h11 `_state.py` style): `DeviceMachine.handle(input, now)` looks the pair
(state, input) up in ONE table, `TRANSITIONS`, and returns the actions the daemon must
carry out. Nothing else assigns a state. An input the current state cannot take is logged
at debug level and ignored, never an error.

A few inputs are refined before the lookup, from what the machine remembers (the "facts"):
a `ButtonUp` of a press shorter than `min_hold_ms` is a discard, not a commit (the
`ButtonGestures` recognizer decides and sets `short`); `Drained` counts only after the
speaking response's `ResponseFinished` (an underrun mid-reply must not end SPEAKING);
`LongPress`, `MuteRequested` and a double tap configured as "mute" all toggle mute.
Each mode ignores the inputs it has no use for: push-to-talk takes no `Tap` and no server
VAD events, always-on and wake-word take no `ButtonDown`/`ButtonUp`, only wake-word takes
`WakeWordDetected` and `ListenTimeout`.

"Rest" is where the device settles when nothing is going on: the link state while not
connected (CONNECTING, OFFLINE or AUTH_ERROR), MUTED while muted (mute survives a
reconnect), else IDLE (push-to-talk, wake-word) or LISTENING (always-on).

Wake-word mode: IDLE listens locally and sends nothing; the wake word (or a tap) starts
LISTENING, which streams (pre-roll first) until server VAD ends the turn. After a reply has
played, LISTENING again for the follow-up window: speech needs no wake word there. LISTENING
that hears no speech ends at its deadline (`listen_s` after the wake word, `follow_up_s`
after a reply): the daemon feeds `ListenTimeout` on its ticks, and the machine takes it only
once the deadline has passed. Nothing is streamed while thinking or speaking; the wake word
spoken over a reply is the barge-in.

RINGING (a timer or alarm) is entered from any state: a reply is cut as by a barge-in, and
while the user speaks (or holds the push-to-talk button) the ring waits until they stop,
then the machine takes the `TimerDue` itself (`ring_waiting` says it is waiting). The link
is remembered while ringing, as in AUDIO_ERROR.

Inputs named like server events (`SpeechStarted`, `SpeechStopped`) are the machine's own
classes, not those of `pivox.core.events`: the daemon translates.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Literal, get_args

log = logging.getLogger("pivox.machine")

Mode = Literal["push_to_talk", "always_on", "wake_word"]


class State(enum.Enum):
    """The device states; the value is the name logged as PIVOX_STATE."""

    BOOTING = "booting"
    CONNECTING = "connecting"
    IDLE = "idle"
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    SPEAKING = "speaking"
    MUTED = "muted"
    OFFLINE = "offline"
    AUTH_ERROR = "auth_error"
    AUDIO_ERROR = "audio_error"
    RINGING = "ringing"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True, kw_only=True)
class Booted:
    """The daemon has started and is about to connect."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected:
    """The session is open (the WebSocket is up and `session.update` is sent)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected:
    """The connection was lost or a connect attempt failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthFailed:
    """The server refused the credentials."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioFailed:
    """The microphone or the speaker failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioRecovered:
    """Both audio devices work again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ButtonDown:
    """The button went down (debounced); sent at the press edge, before any hold is known."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ButtonUp:
    """The button went up after `held_ms`; `short` when held less than the minimum hold."""

    held_ms: float
    short: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Tap:
    """A short press, reported at its release."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DoubleTap:
    """A second short press soon after a tap, reported at its release (instead of a Tap)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LongPress:
    """The button has been held for the long-press time; sent while it is still held."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MuteRequested:
    """Something other than the button (a tool call) asks to mute or unmute."""

    muted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRequested:
    """A stop command from outside (control socket, MQTT): end the reply being made or played."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStarted:
    """Server VAD heard the user start speaking."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStopped:
    """Server VAD heard the user stop speaking."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioStarted:
    """The first audio delta of a live (not cancelled) response arrived."""

    response_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseFinished:
    """`response.done` of a live response, with its status."""

    response_id: str
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Drained:
    """The speaker ring is empty (the daemon may send it every tick while SPEAKING)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WakeWordDetected:
    """The local detector heard the wake word end (wake-word mode)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenTimeout:
    """A clock tick while LISTENING in wake-word mode; taken only past the listen deadline."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerDue:
    """A timer or alarm is due: ring (after the user stops speaking, if they are)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RingStopped:
    """The ring ended elsewhere (it ran out, or the stop_ringing tool stopped it)."""


Input = (
    Booted
    | Connected
    | Disconnected
    | AuthFailed
    | AudioFailed
    | AudioRecovered
    | ButtonDown
    | ButtonUp
    | Tap
    | DoubleTap
    | LongPress
    | MuteRequested
    | StopRequested
    | SpeechStarted
    | SpeechStopped
    | AudioStarted
    | ResponseFinished
    | Drained
    | WakeWordDetected
    | ListenTimeout
    | TimerDue
    | RingStopped
)

# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearInput:
    """Send `input_audio_buffer.clear`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SendPreroll:
    """Send the kept pre-roll audio now, before the live frames."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayEarcon:
    """Play the short chime that says the wake word was heard (if the config asks for it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitInput:
    """Send `input_audio_buffer.commit` then `response.create`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Interrupt:
    """Barge-in: clear the ring, cancel the reply, truncate it to what was played, drop
    its late deltas (the daemon knows the response and the item)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMute:
    """The microphone is now muted (True) or not; no frame is sent while muted."""

    muted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RunAction:
    """Run the double tap's configured action `name` (one the machine does not handle)."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StartRinging:
    """Play the chime, again and again, until StopRinging."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRinging:
    """Silence the chime now and dismiss what was ringing."""


Action = (ClearInput | SendPreroll | PlayEarcon | CommitInput | Interrupt | SetMute | RunAction
          | StartRinging | StopRinging)


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """One accepted input: the state before and after (may be equal) and the actions."""

    old: State
    new: State
    input: Input
    actions: tuple[Action, ...]

    @property
    def changed(self) -> bool:
        """True when the state changed (the daemon logs PIVOX_STATE then)."""
        return self.old is not self.new


# --------------------------------------------------------------------------- the table

MODES: tuple[Mode, ...] = get_args(Mode)


class _ShortRelease:
    """Key: a ButtonUp with `short` set (a tap, not a turn)."""


class _MuteToggle:
    """Key: LongPress, a "mute" double tap, or a MuteRequested that changes the mute."""


class _InterruptRequest:
    """Key: a double tap configured as "interrupt"."""


class _Unmute:
    """Key: a mute toggle while ringing muted."""


class _DeferRing:
    """Key: TimerDue while the user speaks; it rings when they stop."""


class _Dismiss:
    """Key: the wake word while ringing with the link down (no turn can open)."""


class _Rest:
    """Target: the rest state (see the module docstring)."""


class _Stay:
    """Target: the current state (an accepted input that changes no state)."""


_RUN = RunAction(name="<double_tap_action>")
"""Placeholder in the table, replaced by RunAction(the configured name)."""

S = State
_P: tuple[Mode, ...] = ("push_to_talk",)
_A: tuple[Mode, ...] = ("always_on",)
_W: tuple[Mode, ...] = ("wake_word",)
_AW: tuple[Mode, ...] = ("always_on", "wake_word")
_ACTIVE = (S.IDLE, S.LISTENING, S.USER_SPEAKING, S.THINKING, S.SPEAKING)
_CONNECTED = (*_ACTIVE, S.MUTED)
_NOT_LINKED = (S.BOOTING, S.CONNECTING, S.OFFLINE, S.AUTH_ERROR)


def _all_but(*states: State) -> tuple[State, ...]:
    return tuple(s for s in State if s not in states)


Target = State | type[_Rest] | type[_Stay]

# (modes, from states, input key, target, actions): one line per rule.
_RULES: tuple[tuple[tuple[Mode, ...], tuple[State, ...], type, Target, tuple[Action, ...]], ...] = (
    # the link; AUDIO_ERROR is left only by AudioRecovered (the link is remembered meanwhile)
    (MODES, (S.BOOTING,), Booted, S.CONNECTING, ()),
    (MODES, _NOT_LINKED, Connected, _Rest, ()),
    (MODES, _all_but(S.OFFLINE, S.AUDIO_ERROR, S.RINGING), Disconnected, S.OFFLINE, ()),
    (MODES, _all_but(S.AUTH_ERROR, S.AUDIO_ERROR, S.RINGING), AuthFailed, S.AUTH_ERROR, ()),
    (MODES, _all_but(S.AUDIO_ERROR), AudioFailed, S.AUDIO_ERROR, ()),
    (MODES, (S.AUDIO_ERROR,), AudioRecovered, _Rest, ()),
    # mute: frames stop first, then what was sent of the current turn is discarded
    (MODES, _ACTIVE, _MuteToggle, S.MUTED, (SetMute(muted=True), ClearInput())),
    (MODES, (S.MUTED,), _MuteToggle, _Rest, (SetMute(muted=False),)),
    # push-to-talk: press streams (pre-roll first), release commits, a short press discards
    (_P, (S.IDLE,), ButtonDown, S.LISTENING, (ClearInput(), SendPreroll())),
    (_P, (S.THINKING, S.SPEAKING), ButtonDown, S.LISTENING,
     (Interrupt(), ClearInput(), SendPreroll())),
    (_P, (S.LISTENING, S.USER_SPEAKING), ButtonUp, S.THINKING, (CommitInput(),)),
    (_P, (S.LISTENING, S.USER_SPEAKING), _ShortRelease, _Rest, (ClearInput(),)),
    (_P, (S.IDLE,), AudioStarted, S.SPEAKING, ()),
    # always-on and wake-word: server VAD drives the turn
    (_AW, (S.LISTENING,), SpeechStarted, S.USER_SPEAKING, ()),
    (_A, (S.THINKING, S.SPEAKING), SpeechStarted, S.USER_SPEAKING, (Interrupt(),)),
    (_AW, (S.USER_SPEAKING,), SpeechStopped, S.THINKING, ()),
    # a tap ends the user's turn by hand, or interrupts a reply
    (_AW, (S.USER_SPEAKING,), Tap, S.THINKING, (CommitInput(),)),
    (_AW, (S.THINKING, S.SPEAKING), Tap, _Rest, (Interrupt(),)),
    (_AW, (S.LISTENING,), AudioStarted, S.SPEAKING, ()),
    # always-on: a tap starts a turn by hand (what the server buffered before is dropped)
    (_A, (S.LISTENING,), Tap, S.USER_SPEAKING, (ClearInput(),)),
    # wake-word: the wake word or a tap opens the turn, pre-roll first; the wake word over a
    # reply is a barge-in; a listen window without speech closes; a reply opens a follow-up
    (_W, (S.IDLE,), WakeWordDetected, S.LISTENING, (ClearInput(), SendPreroll(), PlayEarcon())),
    (_W, (S.THINKING, S.SPEAKING), WakeWordDetected, S.LISTENING,
     (Interrupt(), ClearInput(), SendPreroll(), PlayEarcon())),
    (_W, (S.LISTENING,), WakeWordDetected, _Stay, ()),
    (_W, (S.IDLE,), Tap, S.LISTENING, (ClearInput(),)),
    (_W, (S.LISTENING,), Tap, _Rest, (ClearInput(),)),
    (_W, (S.LISTENING,), ListenTimeout, _Rest, (ClearInput(),)),
    (_W, (S.IDLE,), AudioStarted, S.SPEAKING, ()),
    (_AW, (S.SPEAKING,), Drained, S.LISTENING, ()),
    # replies, both modes: a reply without audio ends THINKING; SPEAKING ends when drained
    (MODES, (S.THINKING,), AudioStarted, S.SPEAKING, ()),
    (MODES, (S.SPEAKING,), AudioStarted, _Stay, ()),
    (MODES, (S.THINKING,), ResponseFinished, _Rest, ()),
    (MODES, (S.SPEAKING,), ResponseFinished, _Stay, ()),
    (_P, (S.SPEAKING,), Drained, _Rest, ()),
    # double tap, or a stop from outside
    (MODES, (S.THINKING, S.SPEAKING), _InterruptRequest, _Rest, (Interrupt(),)),
    (MODES, (S.THINKING, S.SPEAKING), StopRequested, _Rest, (Interrupt(),)),
    (MODES, _CONNECTED, DoubleTap, _Stay, (_RUN,)),
    # ringing: entered from any state (a reply is cut as by a barge-in; while the user
    # speaks it waits for them to stop); a tap, the button, the wake word (which opens a
    # turn: "snooze five minutes"), speech in always-on or the end of the ring leave it
    (MODES, _all_but(S.RINGING, S.USER_SPEAKING, S.THINKING, S.SPEAKING, S.LISTENING),
     TimerDue, S.RINGING, (StartRinging(),)),
    (_AW, (S.LISTENING,), TimerDue, S.RINGING, (StartRinging(),)),
    (MODES, (S.THINKING, S.SPEAKING), TimerDue, S.RINGING, (Interrupt(), StartRinging())),
    (MODES, (S.RINGING,), TimerDue, _Stay, ()),
    (MODES, (S.USER_SPEAKING,), _DeferRing, _Stay, ()),
    (_P, (S.LISTENING,), _DeferRing, _Stay, ()),
    (_AW, (S.RINGING,), Tap, _Rest, (StopRinging(),)),
    (_P, (S.RINGING,), ButtonDown, _Rest, (StopRinging(),)),
    (_W, (S.RINGING,), WakeWordDetected, S.LISTENING,
     (StopRinging(), ClearInput(), SendPreroll(), PlayEarcon())),
    (_W, (S.RINGING,), _Dismiss, _Rest, (StopRinging(),)),
    (_A, (S.RINGING,), SpeechStarted, S.USER_SPEAKING, (StopRinging(),)),
    (MODES, (S.RINGING,), RingStopped, _Rest, (StopRinging(),)),
    (MODES, (S.RINGING,), StopRequested, _Rest, (StopRinging(),)),
    (MODES, (S.RINGING,), _MuteToggle, S.MUTED, (StopRinging(), SetMute(muted=True),
                                                 ClearInput())),
    (MODES, (S.RINGING,), _Unmute, _Rest, (StopRinging(), SetMute(muted=False))),
)


def _build() -> dict[tuple[Mode, State, type], tuple[Target, tuple[Action, ...]]]:
    table: dict[tuple[Mode, State, type], tuple[Target, tuple[Action, ...]]] = {}
    for modes, states, key, target, actions in _RULES:
        for mode in modes:
            for state in states:
                if (mode, state, key) in table:
                    raise AssertionError(f"two rules for {mode} {state} {key.__name__}")
                table[mode, state, key] = (target, actions)
    return table


TRANSITIONS = _build()
"""(mode, state, input key) -> (target, actions): the one transition table."""

_IGNORED_BY_MODE: dict[Mode, tuple[type, ...]] = {
    "push_to_talk": (Tap, SpeechStarted, SpeechStopped),
    "always_on": (ButtonDown, ButtonUp),
    "wake_word": (ButtonDown, ButtonUp),
}

_STREAMING: dict[Mode, frozenset[State]] = {
    "push_to_talk": frozenset({S.LISTENING, S.USER_SPEAKING}),
    "always_on": frozenset({S.LISTENING, S.USER_SPEAKING, S.THINKING, S.SPEAKING, S.RINGING}),
    "wake_word": frozenset({S.LISTENING, S.USER_SPEAKING}),
}

_MODE_REST: dict[Mode, State] = {
    "push_to_talk": S.IDLE, "always_on": S.LISTENING, "wake_word": S.IDLE
}

_DOUBLE_TAP_KEYS: dict[str, type | None] = {
    "none": None,
    "mute": _MuteToggle,
    "interrupt": _InterruptRequest,
}
"""The double-tap actions the machine carries out itself; any other name is RunAction."""

_LINK: dict[type, State | None] = {
    Booted: S.CONNECTING,
    Connected: None,
    Disconnected: S.OFFLINE,
    AuthFailed: S.AUTH_ERROR,
}
"""What each link input says about the link (None: up), remembered in every state."""


class DeviceMachine:
    """The device's state; feed it inputs with `handle`, carry out the actions it returns."""

    def __init__(self, mode: Mode, double_tap_action: str = "none", *,
                 listen_s: float = 8.0, follow_up_s: float = 5.0) -> None:
        """`listen_s`, `follow_up_s`: wake-word mode's listen windows (see the module doc)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode: Mode = mode
        self.double_tap_action = double_tap_action
        self.listen_s = listen_s
        self.follow_up_s = follow_up_s
        self._listen_until = 0.0
        self._state = State.BOOTING
        self._link: State | None = State.BOOTING
        self._muted = False
        self._held = False
        self._speaking: str | None = None
        self._finished = False
        self._ring_waiting = False
        self.last_transition: Transition | None = None
        """The transition made by the last `handle` call; None when it ignored its input."""

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    @property
    def muted(self) -> bool:
        """True while the microphone is muted (also while offline after a mute)."""
        return self._muted

    @property
    def streaming(self) -> bool:
        """Whether mic frames may be sent now; never while muted."""
        if self._muted or self._state not in _STREAMING[self.mode]:
            return False
        return self.mode != "push_to_talk" or self._held

    def listen_expired(self, now: float) -> bool:
        """Wake-word mode: LISTENING without speech has reached its deadline."""
        return (self.mode == "wake_word" and self._state is State.LISTENING
                and now >= self._listen_until)

    @property
    def quiet(self) -> bool:
        """Nothing is being said (idle, muted, or listening in always-on mode)."""
        return self._state in (State.IDLE, State.MUTED) or (
            self._state is State.LISTENING and self.mode == "always_on")

    @property
    def idle_locally(self) -> bool:
        """Idle in wake-word mode: the device listens locally and sends nothing."""
        return self._state is State.IDLE and self.mode == "wake_word"

    @property
    def listen_until(self) -> float:
        """Wake-word mode: when the current LISTENING window closes without speech."""
        return self._listen_until

    def handle(self, inp: Input, now: float) -> list[Action]:
        """Take one input at time `now` (seconds); return the actions to carry out in order."""
        self._note(inp)
        key = self._key(inp, now)
        rule = None if key is None else TRANSITIONS.get((self.mode, self._state, key))
        if rule is None:
            log.debug("%s ignored in %s at %.3f", type(inp).__name__, self._state.value, now)
            self.last_transition = None
            return []
        target, actions = rule
        if key is _DeferRing:
            self._ring_waiting = True
        actions = tuple(
            RunAction(name=self.double_tap_action) if a is _RUN else a for a in actions
        )
        for action in actions:
            if isinstance(action, SetMute):
                self._muted = action.muted
        old = self._state
        self._state = self._resolve(target)
        self._remember_reply(inp)
        if self._state is State.LISTENING and isinstance(inp, WakeWordDetected | Tap | Drained):
            self._listen_until = now + (self.follow_up_s if isinstance(inp, Drained)
                                        else self.listen_s)
        self.last_transition = Transition(old=old, new=self._state, input=inp, actions=actions)
        if self._ring_waiting and self._key(TimerDue(), now) is TimerDue:
            self._ring_waiting = False  # the user stopped speaking: ring now
            actions = (*actions, *self.handle(TimerDue(), now))
            self.last_transition = Transition(old=old, new=self._state, input=inp,
                                              actions=actions)
        return list(actions)

    @property
    def ring_waiting(self) -> bool:
        """True while a due timer waits for the user to stop speaking."""
        return self._ring_waiting

    def _note(self, inp: Input) -> None:
        """Facts every input updates whatever the state: the link and the button."""
        kind = type(inp)
        if kind in _LINK:
            self._link = _LINK[kind]
        elif isinstance(inp, ButtonDown | ButtonUp):
            self._held = isinstance(inp, ButtonDown)

    def _key(self, inp: Input, now: float) -> type | None:
        """The table key of `inp`, or None when it is to be ignored whatever the state."""
        key = self._base_key(inp, now)
        if key is _MuteToggle and self._muted and self._state is State.RINGING:
            return _Unmute
        return key

    def _base_key(self, inp: Input, now: float) -> type | None:
        if isinstance(inp, _IGNORED_BY_MODE[self.mode]):
            return None
        if isinstance(inp, ButtonUp) and inp.short:
            return _ShortRelease
        if isinstance(inp, TimerDue) and (self._state is State.USER_SPEAKING or (
                self.mode == "push_to_talk" and self._state is State.LISTENING)):
            return _DeferRing
        if isinstance(inp, WakeWordDetected) and self._state is State.RINGING and (
                self._link is not None):
            return _Dismiss
        if isinstance(inp, LongPress):
            return _MuteToggle
        if isinstance(inp, MuteRequested):
            return _MuteToggle if inp.muted != self._muted else None
        if isinstance(inp, DoubleTap):
            return _DOUBLE_TAP_KEYS.get(self.double_tap_action, DoubleTap)
        if isinstance(inp, ResponseFinished) and self._state is State.SPEAKING:
            return ResponseFinished if inp.response_id == self._speaking else None
        if isinstance(inp, Drained):
            return Drained if self._finished else None
        if isinstance(inp, ListenTimeout):
            return ListenTimeout if now >= self._listen_until else None
        return type(inp)

    def _resolve(self, target: Target) -> State:
        if target is _Stay:
            return self._state
        if target is _Rest:
            if self._link is not None:
                return self._link
            return State.MUTED if self._muted else _MODE_REST[self.mode]
        assert isinstance(target, State)
        return target

    def _remember_reply(self, inp: Input) -> None:
        """Which response is speaking and whether it has finished (only SPEAKING keeps it)."""
        if self._state is not State.SPEAKING:
            self._speaking, self._finished = None, False
        elif isinstance(inp, AudioStarted):
            self._speaking, self._finished = inp.response_id, False
        elif isinstance(inp, ResponseFinished):
            self._finished = True
