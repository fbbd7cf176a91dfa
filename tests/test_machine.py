"""The device state machine: the transition table, both modes, mute, replies, the link."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivox.core import machine as m
from pivox.core.machine import State as S

PTT: m.Mode = "push_to_talk"
AON: m.Mode = "always_on"
WW: m.Mode = "wake_word"

LONG_UP = m.ButtonUp(held_ms=800, short=False)
SHORT_UP = m.ButtonUp(held_ms=90, short=True)

# How to reach each state from boot, per mode (USER_SPEAKING is not a push-to-talk state,
# IDLE not an always-on one).
_WW_TURN = (m.Booted(), m.Connected(), m.WakeWordDetected(), m.SpeechStarted())
PATHS: dict[m.Mode, dict[S, tuple[m.Input, ...]]] = {
    PTT: {
        S.BOOTING: (),
        S.CONNECTING: (m.Booted(),),
        S.IDLE: (m.Booted(), m.Connected()),
        S.LISTENING: (m.Booted(), m.Connected(), m.ButtonDown()),
        S.THINKING: (m.Booted(), m.Connected(), m.ButtonDown(), LONG_UP),
        S.SPEAKING: (m.Booted(), m.Connected(), m.ButtonDown(), LONG_UP,
                     m.AudioStarted(response_id="r1")),
        S.MUTED: (m.Booted(), m.Connected(), m.LongPress()),
        S.OFFLINE: (m.Booted(), m.Disconnected()),
        S.AUTH_ERROR: (m.Booted(), m.AuthFailed()),
        S.AUDIO_ERROR: (m.Booted(), m.AudioFailed()),
        S.RINGING: (m.Booted(), m.Connected(), m.TimerDue()),
    },
    AON: {
        S.BOOTING: (),
        S.CONNECTING: (m.Booted(),),
        S.LISTENING: (m.Booted(), m.Connected()),
        S.USER_SPEAKING: (m.Booted(), m.Connected(), m.SpeechStarted()),
        S.THINKING: (m.Booted(), m.Connected(), m.SpeechStarted(), m.SpeechStopped()),
        S.SPEAKING: (m.Booted(), m.Connected(), m.SpeechStarted(), m.SpeechStopped(),
                     m.AudioStarted(response_id="r1")),
        S.MUTED: (m.Booted(), m.Connected(), m.LongPress()),
        S.OFFLINE: (m.Booted(), m.Disconnected()),
        S.AUTH_ERROR: (m.Booted(), m.AuthFailed()),
        S.AUDIO_ERROR: (m.Booted(), m.AudioFailed()),
        S.RINGING: (m.Booted(), m.Connected(), m.TimerDue()),
    },
    WW: {
        S.BOOTING: (),
        S.CONNECTING: (m.Booted(),),
        S.IDLE: (m.Booted(), m.Connected()),
        S.LISTENING: (m.Booted(), m.Connected(), m.WakeWordDetected()),
        S.USER_SPEAKING: _WW_TURN,
        S.THINKING: (*_WW_TURN, m.SpeechStopped()),
        S.SPEAKING: (*_WW_TURN, m.SpeechStopped(), m.AudioStarted(response_id="r1")),
        S.MUTED: (m.Booted(), m.Connected(), m.LongPress()),
        S.OFFLINE: (m.Booted(), m.Disconnected()),
        S.AUTH_ERROR: (m.Booted(), m.AuthFailed()),
        S.AUDIO_ERROR: (m.Booted(), m.AudioFailed()),
        S.RINGING: (m.Booted(), m.Connected(), m.TimerDue()),
    },
}
MODES = (PTT, AON, WW)

FINISHED = m.ResponseFinished(response_id="r1", status="completed")
STARTS: dict[m.Mode, list[tuple[m.Input, ...]]] = {
    mode: [*paths.values(), (*paths[S.SPEAKING], FINISHED),
           (*paths[S.MUTED], m.TimerDue()), (*paths[S.RINGING], m.Disconnected())]
    for mode, paths in PATHS.items()
}
"""Every state's path, SPEAKING after its reply finished (waiting for the drain), and
RINGING muted and with the link down."""

SAMPLE_INPUTS: tuple[m.Input, ...] = (
    m.Booted(), m.Connected(), m.Disconnected(), m.AuthFailed(), m.AudioFailed(),
    m.AudioRecovered(), m.ButtonDown(), LONG_UP, SHORT_UP, m.Tap(), m.DoubleTap(),
    m.LongPress(), m.MuteRequested(muted=True), m.MuteRequested(muted=False), m.StopRequested(),
    m.SpeechStarted(), m.SpeechStopped(), m.AudioStarted(response_id="r1"),
    m.AudioStarted(response_id="r2"), m.ResponseFinished(response_id="r1", status="completed"),
    m.ResponseFinished(response_id="r9", status="cancelled"), m.Drained(),
    m.WakeWordDetected(), m.ListenTimeout(), m.TimerDue(), m.RingStopped(),
)
DOUBLE_TAP_ACTIONS = ("none", "mute", "interrupt", "repeat")


def drive(machine: m.DeviceMachine, inputs: Sequence[m.Input], now: float = 0.0) -> list:
    actions: list = []
    for i, inp in enumerate(inputs):
        actions = machine.handle(inp, now + i)
    return actions


def at(mode: m.Mode, state: S, double_tap_action: str = "none") -> m.DeviceMachine:
    machine = m.DeviceMachine(mode, double_tap_action)
    drive(machine, PATHS[mode][state])
    assert machine.state is state
    return machine


def started(mode: m.Mode, path: Sequence[m.Input], action: str) -> m.DeviceMachine:
    machine = m.DeviceMachine(mode, action)
    drive(machine, path)
    return machine


# ------------------------------------------------------------------ the table, exhaustively


def test_the_table_has_one_rule_per_key_and_only_known_states() -> None:
    for (mode, state, _key), (target, actions) in m.TRANSITIONS.items():
        assert mode in m.MODES and isinstance(state, S)
        assert isinstance(target, S) or target in (m._Rest, m._Stay)
        assert all(isinstance(a, m.Action) for a in actions)


@pytest.mark.parametrize("action", DOUBLE_TAP_ACTIONS)
@pytest.mark.parametrize("mode", MODES)
def test_every_state_takes_or_ignores_every_input(mode: m.Mode, action: str) -> None:
    """Every (state, input) is a table transition or ignored (unchanged, no actions)."""
    for path in STARTS[mode]:
        for inp in SAMPLE_INPUTS:
            machine = started(mode, path, action)
            state = machine.state
            actions = machine.handle(inp, 100.0)
            t = machine.last_transition
            if t is None:
                assert machine.state is state and actions == []
            else:
                assert (t.old, t.new, t.input, list(t.actions)) == (
                    state, machine.state, inp, actions)


def test_every_rule_of_a_reachable_state_is_exercised() -> None:
    """The sample inputs reach every table entry whose state is reachable in its mode."""
    hit = set()
    for action in DOUBLE_TAP_ACTIONS:
        for mode, paths in STARTS.items():
            for path in paths:
                for inp in SAMPLE_INPUTS:
                    machine = started(mode, path, action)
                    state = machine.state
                    key = machine._key(inp, 100.0)
                    machine.handle(inp, 100.0)
                    if machine.last_transition is not None:
                        hit.add((mode, state, key))
    reachable = {k for k in m.TRANSITIONS if k[1] in PATHS[k[0]]}
    assert reachable - hit == set()


def test_an_ignored_input_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    machine = at(PTT, S.IDLE)
    with caplog.at_level(logging.DEBUG, logger="pivox.machine"):
        assert machine.handle(m.SpeechStopped(), 5.0) == []
    assert machine.state is S.IDLE and machine.last_transition is None
    assert "SpeechStopped ignored in idle" in caplog.text


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="push_to_talk, always_on"):
        m.DeviceMachine("sometimes")  # type: ignore[arg-type]


# ------------------------------------------------------------------ push-to-talk


def test_push_to_talk_turn() -> None:
    machine = at(PTT, S.IDLE)
    assert not machine.streaming
    assert machine.handle(m.ButtonDown(), 1.0) == [m.ClearInput(), m.SendPreroll()]
    assert machine.state is S.LISTENING and machine.streaming
    assert machine.handle(LONG_UP, 2.0) == [m.CommitInput()]
    assert machine.state is S.THINKING and not machine.streaming
    machine.handle(m.AudioStarted(response_id="r1"), 2.5)
    assert machine.state is S.SPEAKING
    assert machine.handle(m.Drained(), 2.6) == []  # an underrun mid-reply
    assert machine.state is S.SPEAKING and machine.last_transition is None
    machine.handle(m.ResponseFinished(response_id="r1", status="completed"), 3.0)
    assert machine.state is S.SPEAKING
    machine.handle(m.Drained(), 3.5)
    assert machine.state is S.IDLE


def test_a_short_press_discards_the_turn() -> None:
    machine = at(PTT, S.IDLE)
    machine.handle(m.ButtonDown(), 1.0)
    assert machine.handle(SHORT_UP, 1.1) == [m.ClearInput()]
    assert machine.state is S.IDLE and not machine.streaming


@pytest.mark.parametrize("state", [S.THINKING, S.SPEAKING])
def test_a_press_over_a_reply_interrupts_and_starts_a_turn(state: S) -> None:
    machine = at(PTT, state)
    assert machine.handle(m.ButtonDown(), 9.0) == [
        m.Interrupt(), m.ClearInput(), m.SendPreroll()]
    assert machine.state is S.LISTENING and machine.streaming


def test_a_long_press_mutes_and_its_release_does_not_commit() -> None:
    machine = at(PTT, S.IDLE)
    machine.handle(m.ButtonDown(), 1.0)
    assert machine.handle(m.LongPress(), 3.0) == [m.SetMute(muted=True), m.ClearInput()]
    assert machine.state is S.MUTED and machine.muted and not machine.streaming
    assert machine.handle(m.ButtonUp(held_ms=2500), 3.5) == []
    assert machine.state is S.MUTED
    # unmute: the press is ignored, the long press unmutes, its release commits nothing
    assert machine.handle(m.ButtonDown(), 5.0) == []
    assert not machine.streaming
    assert machine.handle(m.LongPress(), 7.0) == [m.SetMute(muted=False)]
    assert machine.state is S.IDLE
    assert machine.handle(m.ButtonUp(held_ms=2200), 7.2) == []
    assert machine.state is S.IDLE and not machine.streaming


def test_push_to_talk_streams_only_while_held() -> None:
    machine = at(PTT, S.LISTENING)
    machine.handle(m.Disconnected(), 1.0)
    machine.handle(m.Connected(), 2.0)  # still held, but the turn is gone
    assert machine.state is S.IDLE and not machine.streaming


# ------------------------------------------------------------------ always-on


def test_always_on_turn_and_barge_in() -> None:
    machine = at(AON, S.LISTENING)
    assert machine.streaming
    machine.handle(m.SpeechStarted(), 1.0)
    assert machine.state is S.USER_SPEAKING and machine.streaming
    machine.handle(m.SpeechStopped(), 2.0)
    assert machine.state is S.THINKING and machine.streaming
    machine.handle(m.AudioStarted(response_id="r1"), 2.4)
    assert machine.state is S.SPEAKING and machine.streaming
    assert machine.handle(m.SpeechStarted(), 3.0) == [m.Interrupt()]
    assert machine.state is S.USER_SPEAKING
    # the cancelled reply's end changes nothing; the next turn goes on
    assert machine.handle(m.Drained(), 3.1) == []
    machine.handle(m.SpeechStopped(), 4.0)
    machine.handle(m.AudioStarted(response_id="r2"), 4.3)
    machine.handle(m.ResponseFinished(response_id="r2", status="completed"), 5.0)
    machine.handle(m.Drained(), 6.0)
    assert machine.state is S.LISTENING


@pytest.mark.parametrize("state", [S.THINKING, S.SPEAKING])
def test_always_on_tap_interrupts_a_reply(state: S) -> None:
    machine = at(AON, state)
    assert machine.handle(m.Tap(), 9.0) == [m.Interrupt()]
    assert machine.state is S.LISTENING


def test_always_on_tap_starts_a_turn_by_hand_and_a_second_ends_it() -> None:
    machine = at(AON, S.LISTENING)
    assert machine.handle(m.Tap(), 1.0) == [m.ClearInput()]
    assert machine.state is S.USER_SPEAKING and machine.streaming
    assert machine.handle(m.Tap(), 4.0) == [m.CommitInput()]
    assert machine.state is S.THINKING


def test_always_on_tap_ends_the_users_turn() -> None:
    machine = at(AON, S.USER_SPEAKING)
    assert machine.handle(m.Tap(), 9.0) == [m.CommitInput()]
    assert machine.state is S.THINKING


def test_always_on_ignores_the_push_to_talk_button() -> None:
    machine = at(AON, S.LISTENING)
    assert machine.handle(m.ButtonDown(), 1.0) == []
    assert machine.handle(LONG_UP, 2.0) == []
    assert machine.state is S.LISTENING


# ------------------------------------------------------------------ wake word


def test_wake_word_idle_sends_nothing_and_the_wake_word_opens_a_turn() -> None:
    machine = at(WW, S.IDLE)
    assert not machine.streaming
    assert machine.handle(m.WakeWordDetected(), 1.0) == [
        m.ClearInput(), m.SendPreroll(), m.PlayEarcon()]
    assert machine.state is S.LISTENING and machine.streaming
    machine.handle(m.SpeechStarted(), 1.2)
    assert machine.state is S.USER_SPEAKING and machine.streaming
    machine.handle(m.SpeechStopped(), 3.0)
    assert machine.state is S.THINKING and not machine.streaming
    machine.handle(m.AudioStarted(response_id="r1"), 3.5)
    assert machine.state is S.SPEAKING and not machine.streaming
    machine.handle(m.ResponseFinished(response_id="r1", status="completed"), 4.0)
    machine.handle(m.Drained(), 6.0)
    assert machine.state is S.LISTENING and machine.streaming  # the follow-up window


def test_follow_up_window_takes_speech_then_closes_at_its_deadline() -> None:
    machine = m.DeviceMachine(WW, follow_up_s=4.0, listen_s=7.0)
    drive(machine, PATHS[WW][S.SPEAKING])
    machine.handle(m.ResponseFinished(response_id="r1", status="completed"), 20.0)
    machine.handle(m.Drained(), 21.0)
    assert machine.state is S.LISTENING and machine.listen_until == 25.0
    assert machine.handle(m.ListenTimeout(), 24.9) == []
    assert machine.state is S.LISTENING
    # speech inside the window is a turn without the wake word
    machine.handle(m.SpeechStarted(), 24.95)
    assert machine.state is S.USER_SPEAKING
    assert machine.handle(m.ListenTimeout(), 30.0) == []
    machine.handle(m.SpeechStopped(), 31.0)
    machine.handle(m.AudioStarted(response_id="r2"), 31.5)
    machine.handle(m.ResponseFinished(response_id="r2", status="completed"), 32.0)
    machine.handle(m.Drained(), 33.0)
    assert machine.listen_until == 37.0
    assert machine.handle(m.ListenTimeout(), 37.0) == [m.ClearInput()]
    assert machine.state is S.IDLE and not machine.streaming


def test_after_the_wake_word_silence_closes_the_window_after_listen_s() -> None:
    machine = m.DeviceMachine(WW, follow_up_s=4.0, listen_s=7.0)
    drive(machine, PATHS[WW][S.IDLE])
    machine.handle(m.WakeWordDetected(), 10.0)
    assert machine.listen_until == 17.0
    machine.handle(m.WakeWordDetected(), 12.0)  # said again: the window starts over
    assert machine.state is S.LISTENING and machine.listen_until == 19.0
    assert machine.handle(m.ListenTimeout(), 18.0) == []
    assert machine.handle(m.ListenTimeout(), 19.5) == [m.ClearInput()]
    assert machine.state is S.IDLE


@pytest.mark.parametrize("state", [S.THINKING, S.SPEAKING])
def test_the_wake_word_over_a_reply_is_a_barge_in(state: S) -> None:
    machine = at(WW, state)
    assert machine.handle(m.WakeWordDetected(), 9.0) == [
        m.Interrupt(), m.ClearInput(), m.SendPreroll(), m.PlayEarcon()]
    assert machine.state is S.LISTENING and machine.streaming


@pytest.mark.parametrize("state", [S.THINKING, S.SPEAKING])
def test_wake_word_mode_takes_no_server_barge_in(state: S) -> None:
    """Nothing is streamed over a reply, so a late speech_started is no barge-in."""
    machine = at(WW, state)
    assert machine.handle(m.SpeechStarted(), 9.0) == []
    assert machine.state is state


def test_wake_word_mode_button_gestures() -> None:
    machine = at(WW, S.IDLE)
    assert machine.handle(m.Tap(), 1.0) == [m.ClearInput()]  # talk without the wake word
    assert machine.state is S.LISTENING and machine.streaming
    assert machine.handle(m.Tap(), 2.0) == [m.ClearInput()]  # changed my mind
    assert machine.state is S.IDLE and not machine.streaming
    assert at(WW, S.USER_SPEAKING).handle(m.Tap(), 1.0) == [m.CommitInput()]
    speaking = at(WW, S.SPEAKING)
    assert speaking.handle(m.Tap(), 1.0) == [m.Interrupt()]
    assert speaking.state is S.IDLE
    muted = at(WW, S.LISTENING)
    assert muted.handle(m.LongPress(), 1.0) == [m.SetMute(muted=True), m.ClearInput()]
    assert muted.handle(m.WakeWordDetected(), 2.0) == []
    assert muted.state is S.MUTED and not muted.streaming
    assert at(WW, S.IDLE).handle(m.ButtonDown(), 1.0) == []


# ------------------------------------------------------------------ replies


@pytest.mark.parametrize(("mode", "rest"), [(PTT, S.IDLE), (AON, S.LISTENING), (WW, S.IDLE)])
def test_a_reply_without_audio_ends_thinking_and_a_follow_up_can_speak(
    mode: m.Mode, rest: S
) -> None:
    machine = at(mode, S.THINKING)
    machine.handle(m.ResponseFinished(response_id="r1", status="completed"), 1.0)
    assert machine.state is rest
    machine.handle(m.AudioStarted(response_id="r2"), 1.5)
    assert machine.state is S.SPEAKING


def test_speaking_ends_only_when_the_speaking_reply_finished_and_drained() -> None:
    machine = at(AON, S.SPEAKING)  # r1 speaking
    machine.handle(m.ResponseFinished(response_id="r0", status="completed"), 1.0)
    machine.handle(m.Drained(), 1.1)
    assert machine.state is S.SPEAKING
    machine.handle(m.ResponseFinished(response_id="r1", status="completed"), 2.0)
    machine.handle(m.AudioStarted(response_id="r2"), 2.1)  # a follow-up before the drain
    machine.handle(m.Drained(), 2.2)
    assert machine.state is S.SPEAKING
    machine.handle(m.ResponseFinished(response_id="r2", status="completed"), 3.0)
    machine.handle(m.Drained(), 3.5)
    assert machine.state is S.LISTENING


# ------------------------------------------------------------------ mute, link, errors


@pytest.mark.parametrize("mode", MODES)
def test_mute_survives_a_reconnect(mode: m.Mode) -> None:
    machine = at(mode, S.MUTED)
    machine.handle(m.Disconnected(), 1.0)
    assert machine.state is S.OFFLINE
    machine.handle(m.Connected(), 2.0)
    assert machine.state is S.MUTED and not machine.streaming


def test_mute_requests_toggle_only_when_they_change_something() -> None:
    machine = at(AON, S.LISTENING)
    assert machine.handle(m.MuteRequested(muted=False), 1.0) == []
    assert machine.handle(m.MuteRequested(muted=True), 1.0) == [
        m.SetMute(muted=True), m.ClearInput()]
    assert machine.handle(m.MuteRequested(muted=True), 1.0) == []
    assert machine.handle(m.MuteRequested(muted=False), 1.0) == [m.SetMute(muted=False)]
    assert machine.state is S.LISTENING and machine.streaming


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("state", [S.IDLE, S.LISTENING, S.USER_SPEAKING, S.THINKING,
                                   S.SPEAKING, S.MUTED, S.CONNECTING, S.AUTH_ERROR])
def test_disconnected_goes_offline_and_connected_returns_to_rest(mode: m.Mode, state: S) -> None:
    if state not in PATHS[mode]:
        return
    machine = at(mode, state)
    machine.handle(m.Disconnected(), 1.0)
    assert machine.state is S.OFFLINE and not machine.streaming
    machine.handle(m.Connected(), 2.0)
    rest = S.MUTED if state is S.MUTED else {PTT: S.IDLE, AON: S.LISTENING, WW: S.IDLE}[mode]
    assert machine.state is rest


def test_auth_error_then_connected() -> None:
    machine = at(AON, S.SPEAKING)
    machine.handle(m.AuthFailed(), 1.0)
    assert machine.state is S.AUTH_ERROR and not machine.streaming
    machine.handle(m.Connected(), 2.0)
    assert machine.state is S.LISTENING


def test_audio_error_remembers_the_link_meanwhile() -> None:
    machine = at(AON, S.LISTENING)
    machine.handle(m.AudioFailed(), 1.0)
    assert machine.state is S.AUDIO_ERROR and not machine.streaming
    machine.handle(m.Disconnected(), 2.0)
    assert machine.state is S.AUDIO_ERROR
    machine.handle(m.AudioRecovered(), 3.0)
    assert machine.state is S.OFFLINE
    machine.handle(m.Connected(), 4.0)
    assert machine.state is S.LISTENING


def test_audio_error_before_the_first_connect() -> None:
    machine = at(AON, S.CONNECTING)
    machine.handle(m.AudioFailed(), 1.0)
    machine.handle(m.Connected(), 2.0)
    assert machine.state is S.AUDIO_ERROR
    machine.handle(m.AudioRecovered(), 3.0)
    assert machine.state is S.LISTENING


# ------------------------------------------------------------------ double tap


def test_double_tap_runs_the_configured_action_in_place() -> None:
    machine = at(PTT, S.SPEAKING, "repeat")
    assert machine.handle(m.DoubleTap(), 1.0) == [m.RunAction(name="repeat")]
    assert machine.state is S.SPEAKING
    t = machine.last_transition
    assert t is not None and not t.changed and t.input == m.DoubleTap()


def test_double_tap_builtins() -> None:
    assert at(AON, S.SPEAKING, "none").handle(m.DoubleTap(), 1.0) == []
    muting = at(AON, S.LISTENING, "mute")
    muting.handle(m.DoubleTap(), 1.0)
    assert muting.state is S.MUTED
    interrupting = at(PTT, S.SPEAKING, "interrupt")
    assert interrupting.handle(m.DoubleTap(), 1.0) == [m.Interrupt()]
    assert interrupting.state is S.IDLE


def test_last_transition_names_old_new_and_input() -> None:
    machine = at(PTT, S.IDLE)
    machine.handle(m.ButtonDown(), 1.0)
    t = machine.last_transition
    assert t == m.Transition(old=S.IDLE, new=S.LISTENING, input=m.ButtonDown(),
                             actions=(m.ClearInput(), m.SendPreroll()))
    assert t.changed


# ------------------------------------------------------------------ random sequences

_INPUTS = st.one_of(
    st.sampled_from([i for i in SAMPLE_INPUTS if not isinstance(i, m.AudioStarted | m.ButtonUp
                                                                 | m.ResponseFinished)]),
    st.builds(m.ButtonUp, held_ms=st.floats(0, 5000), short=st.booleans()),
    st.builds(m.AudioStarted, response_id=st.sampled_from(["r1", "r2", "r3"])),
    st.builds(m.ResponseFinished, response_id=st.sampled_from(["r1", "r2", "r3"]),
              status=st.sampled_from(["completed", "cancelled", "failed"])),
)


@settings(max_examples=300, deadline=None)
@given(mode=st.sampled_from(list(MODES)), action=st.sampled_from(DOUBLE_TAP_ACTIONS),
       inputs=st.lists(_INPUTS, max_size=60))
def test_random_inputs_never_crash_and_never_stream_while_muted(
    mode: m.Mode, action: str, inputs: list[m.Input]
) -> None:
    machine = m.DeviceMachine(mode, action)
    held = long_since_down = False
    for i, inp in enumerate(inputs):
        actions = machine.handle(inp, float(i))
        if isinstance(inp, m.ButtonDown | m.ButtonUp):
            held = isinstance(inp, m.ButtonDown)
            long_since_down = False
        long_since_down |= isinstance(inp, m.LongPress)
        if machine.state is S.MUTED:
            assert machine.muted
        if machine.muted:
            assert not machine.streaming
        if mode == PTT and machine.streaming:
            assert held
        if mode == WW and machine.streaming:
            assert machine.state in (S.LISTENING, S.USER_SPEAKING)
        if mode == PTT and m.CommitInput() in actions:
            assert isinstance(inp, m.ButtonUp) and not inp.short and not long_since_down
        if machine.last_transition is None:
            assert actions == []


# ------------------------------------------------------------------ ringing


def test_a_timer_due_during_a_reply_cuts_it_like_a_barge_in() -> None:
    machine = at(WW, S.SPEAKING)
    assert machine.handle(m.TimerDue(), 50.0) == [m.Interrupt(), m.StartRinging()]
    assert machine.state is S.RINGING


@pytest.mark.parametrize("mode", [AON, WW])
def test_a_timer_due_while_the_user_speaks_rings_when_they_stop(mode: m.Mode) -> None:
    machine = at(mode, S.USER_SPEAKING)
    assert machine.handle(m.TimerDue(), 50.0) == []
    assert machine.state is S.USER_SPEAKING and machine.ring_waiting
    assert machine.handle(m.SpeechStopped(), 51.0) == [m.Interrupt(), m.StartRinging()]
    assert machine.state is S.RINGING and not machine.ring_waiting


def test_push_to_talk_rings_at_the_release() -> None:
    machine = at(PTT, S.LISTENING)
    assert machine.handle(m.TimerDue(), 50.0) == []
    assert machine.handle(SHORT_UP, 51.0) == [m.ClearInput(), m.StartRinging()]
    assert machine.state is S.RINGING
    assert machine.handle(m.ButtonDown(), 52.0) == [m.StopRinging()]
    assert machine.state is S.IDLE


def test_the_wake_word_dismisses_and_opens_a_turn() -> None:
    machine = at(WW, S.RINGING)
    assert machine.handle(m.WakeWordDetected(), 50.0) == [
        m.StopRinging(), m.ClearInput(), m.SendPreroll(), m.PlayEarcon()]
    assert machine.state is S.LISTENING and machine.streaming


def test_a_tap_or_speech_dismisses_and_a_long_press_still_mutes() -> None:
    tapped = at(WW, S.RINGING)
    assert tapped.handle(m.Tap(), 50.0) == [m.StopRinging()] and tapped.state is S.IDLE
    spoken = at(AON, S.RINGING)
    assert spoken.streaming  # the server hears the user over the (cancelled) chime
    assert spoken.handle(m.SpeechStarted(), 50.0) == [m.StopRinging()]
    assert spoken.state is S.USER_SPEAKING
    muted = at(AON, S.RINGING)
    assert muted.handle(m.LongPress(), 50.0) == [
        m.StopRinging(), m.SetMute(muted=True), m.ClearInput()]
    assert muted.state is S.MUTED


def test_the_link_going_down_does_not_stop_a_ring() -> None:
    machine = at(WW, S.RINGING)
    machine.handle(m.Disconnected(), 50.0)
    assert machine.state is S.RINGING
    assert machine.handle(m.WakeWordDetected(), 51.0) == [m.StopRinging()]  # no turn offline
    assert machine.state is S.OFFLINE
    muted = at(PTT, S.MUTED)
    assert muted.handle(m.TimerDue(), 50.0) == [m.StartRinging()]
    assert muted.handle(m.RingStopped(), 51.0) == [m.StopRinging()]
    assert muted.state is S.MUTED


@pytest.mark.parametrize("mode", MODES)
def test_quiet_and_idle_locally_follow_the_state(mode: m.Mode) -> None:
    """The link renews only while nothing is said, and ends a wake-word idle session quietly."""
    for state, path in PATHS[mode].items():
        machine = m.DeviceMachine(mode)
        for inp in path:
            machine.handle(inp, 0.0)
        assert machine.state is state
        assert machine.quiet == (state in (S.IDLE, S.MUTED) or (
            state is S.LISTENING and mode == AON))
        assert machine.idle_locally == (state is S.IDLE and mode == WW)


def test_the_listen_window_expires_only_listening_in_wake_word_mode() -> None:
    machine = m.DeviceMachine(WW, listen_s=8.0)
    for inp in (m.Booted(), m.Connected(), m.WakeWordDetected()):
        machine.handle(inp, 100.0)
    assert not machine.listen_expired(107.9) and machine.listen_expired(108.0)
    machine.handle(m.SpeechStarted(), 101.0)
    assert not machine.listen_expired(200.0)
    aon = m.DeviceMachine(AON)
    for inp in (m.Booted(), m.Connected()):
        aon.handle(inp, 0.0)
    assert aon.state is S.LISTENING and not aon.listen_expired(1e9)


@pytest.mark.parametrize("mode", [PTT, AON, WW])
def test_a_stop_request_ends_a_reply_and_interrupts_it(mode: m.Mode) -> None:
    machine = at(mode, S.SPEAKING)
    actions = machine.handle(m.StopRequested(), 5.0)
    assert m.Interrupt() in actions
    assert machine.state is (S.LISTENING if mode == AON else S.IDLE)
    assert at(mode, S.MUTED).handle(m.StopRequested(), 5.0) == []
