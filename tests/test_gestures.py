"""Button gestures from timestamped edges: tap, double tap, hold, long press, bounce."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pivox.core.gestures import ButtonGestures
from pivox.core.machine import ButtonDown, ButtonUp, DoubleTap, LongPress, Tap


def run(g: ButtonGestures, edges: list[tuple[float, bool]], poll_every: float = 0.02) -> list:
    """Feed edges in time order, polling every `poll_every` s like the daemon's tick."""
    out: list = []
    t = 0.0
    for when, pressed in edges:
        while t + poll_every <= when:
            t += poll_every
            out += g.poll(t)
        out += g.edge(pressed, when)
    for _ in range(10):
        t = max(t, edges[-1][0] if edges else 0.0) + poll_every
        out += g.poll(t)
    return out


def test_the_press_is_reported_at_its_first_edge() -> None:
    g = ButtonGestures()
    assert g.edge(True, 5.0) == [ButtonDown()]
    assert g.pressed


def test_hold_reports_the_held_time() -> None:
    g = ButtonGestures(min_hold_ms=250)
    g.edge(True, 1.0)
    (up,) = g.edge(False, 1.5)
    assert isinstance(up, ButtonUp) and not up.short and abs(up.held_ms - 500) < 1e-6


def test_tap() -> None:
    g = ButtonGestures(min_hold_ms=250)
    g.edge(True, 1.0)
    up, tap = g.edge(False, 1.1)
    assert isinstance(up, ButtonUp) and up.short and abs(up.held_ms - 100) < 1e-6
    assert tap == Tap()


def test_double_tap_then_a_plain_tap() -> None:
    g = ButtonGestures(double_tap_ms=400)
    out = run(g, [(1.0, True), (1.1, False), (1.3, True), (1.4, False),
                  (1.6, True), (1.7, False)])
    kinds = [type(x) for x in out]
    assert kinds == [ButtonDown, ButtonUp, Tap, ButtonDown, ButtonUp, DoubleTap,
                     ButtonDown, ButtonUp, Tap]


def test_taps_far_apart_are_two_taps() -> None:
    out = run(ButtonGestures(double_tap_ms=400), [(1.0, True), (1.1, False),
                                                  (1.6, True), (1.7, False)])
    assert [type(x) for x in out].count(Tap) == 2 and DoubleTap() not in out


def test_long_press_fires_once_while_held_and_its_release_is_no_tap() -> None:
    g = ButtonGestures(long_press_ms=2000)
    g.edge(True, 0.0)
    assert g.poll(1.99) == []
    assert g.poll(2.0) == [LongPress()]
    assert g.poll(2.5) == []
    (up,) = g.edge(False, 3.0)
    assert isinstance(up, ButtonUp) and not up.short


def test_long_press_is_not_lost_without_polls() -> None:
    g = ButtonGestures(long_press_ms=2000)
    g.edge(True, 0.0)
    out = g.edge(False, 2.5)
    assert [type(x) for x in out] == [LongPress, ButtonUp]


def test_long_press_can_be_disabled() -> None:
    g = ButtonGestures(long_press_ms=None)
    g.edge(True, 0.0)
    assert g.poll(100.0) == []


def test_repeated_levels_are_ignored() -> None:
    g = ButtonGestures()
    assert g.edge(True, 1.0) == [ButtonDown()]
    assert g.edge(True, 1.2) == []
    assert g.edge(False, 1.5) != []
    assert g.edge(False, 1.9) == []


def test_a_bouncy_press_and_release_is_one_hold() -> None:
    """Contacts chatter for 20 ms at each end: one press, one release."""
    press = [(1.0 + i * 0.002, i % 2 == 0) for i in range(11)]  # ends pressed
    release = [(2.0 + i * 0.002, i % 2 == 1) for i in range(11)]  # ends released
    out = run(ButtonGestures(debounce_ms=30), press + release)
    assert [type(x) for x in out] == [ButtonDown, ButtonUp]
    assert abs(out[1].held_ms - 1000) < 25


def test_a_second_of_bounce_yields_sane_gestures() -> None:
    """100 edges in one second: at most one press and its release, ending released."""
    g = ButtonGestures(debounce_ms=30)
    edges = [(1.0 + i * 0.01, i % 2 == 0) for i in range(100)]
    out = run(g, edges, poll_every=0.02)
    kinds = [type(x) for x in out]
    assert kinds.count(ButtonDown) == kinds.count(ButtonUp) == 1
    assert not g.pressed


def test_a_glitch_shorter_than_debounce_is_a_tap_settled_by_poll() -> None:
    g = ButtonGestures(debounce_ms=30)
    assert g.edge(True, 1.0) == [ButtonDown()]
    assert g.edge(False, 1.005) == []  # within the debounce time: not yet
    out = g.poll(1.04)
    assert [type(x) for x in out] == [ButtonUp, Tap] and out[0].short


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0005, 3.0), st.booleans()), max_size=80),
       st.sampled_from([0, 10, 30]))
def test_random_edges_give_well_formed_gestures(steps: list[tuple[float, bool]],
                                                debounce_ms: int) -> None:
    g = ButtonGestures(debounce_ms=debounce_ms, long_press_ms=1000)
    edges, t = [], 0.0
    for dt, pressed in steps:
        t += dt
        edges.append((t, pressed))
    out = run(g, edges)
    down = long_sent = False
    previous = None
    for gesture in out:
        if isinstance(gesture, ButtonDown):
            assert not down
            down, long_sent = True, False
        elif isinstance(gesture, LongPress):
            assert down and not long_sent
            long_sent = True
        elif isinstance(gesture, ButtonUp):
            assert down and gesture.held_ms >= 0
            down = False
        else:
            assert isinstance(previous, ButtonUp) and previous.short and not long_sent
        previous = gesture
    assert down == g.pressed == (edges[-1][1] if edges else False)


def test_busy_while_held_or_while_an_edge_settles() -> None:
    g = ButtonGestures(debounce_ms=30)
    assert not g.busy
    g.edge(True, 1.0)
    assert g.busy and g.pressed
    g.edge(False, 1.5)
    assert not g.busy
    g.edge(True, 1.51)  # within the debounce of the release: not accepted yet
    assert g.busy and not g.pressed
    g.poll(1.6)
    assert g.busy and g.pressed
