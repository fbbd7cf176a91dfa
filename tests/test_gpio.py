"""The GPIO edge over the RPi.GPIO double, the double itself, and the simulated button/LED."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time

import pytest

from pivox.core import machine as m
from pivox.core.errors import DeviceError
from pivox.core.gestures import ButtonGestures
from pivox.core.led import DEFAULT_PATTERNS, DIM_LEVEL, LedPattern
from pivox.host.gpio import Button, Led, load_gpio
from pivox.host.simgpio import SimButton, SimLed
from tests.gpio_double import GpioDouble

PIN = 17
LED_PIN = 18


# ------------------------------------------------------------------ the double


def test_the_double_is_what_import_rpi_gpio_finds(gpio_double: GpioDouble) -> None:
    import RPi.GPIO as GPIO

    assert GPIO is gpio_double
    assert load_gpio() is gpio_double


def test_load_gpio_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "RPi", None)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    with pytest.raises(DeviceError) as info:
        load_gpio()
    assert info.value.device == "RPi.GPIO"
    assert "not installed: pip install RPi.GPIO" in str(info.value)
    assert "rpi-lgpio" in str(info.value)


def test_misuse_raises_like_the_real_module(gpio_double: GpioDouble) -> None:
    g = gpio_double
    with pytest.raises(RuntimeError, match="set pin numbering mode"):
        g.setup(PIN, g.IN)
    with pytest.raises(ValueError, match="invalid mode"):
        g.setmode(99)
    g.setmode(g.BCM)
    with pytest.raises(ValueError, match="different mode"):
        g.setmode(g.BOARD)
    with pytest.raises(RuntimeError, match="setup\\(\\) the GPIO channel first"):
        g.input(PIN)
    with pytest.raises(ValueError, match="invalid on a Raspberry Pi"):
        g.setup(60, g.IN)
    with pytest.raises(ValueError, match="not valid for outputs"):
        g.setup(LED_PIN, g.OUT, pull_up_down=g.PUD_UP)
    with pytest.raises(ValueError, match="initial parameter is not valid for inputs"):
        g.setup(PIN, g.IN, initial=g.HIGH)
    g.setup(PIN, g.IN, pull_up_down=g.PUD_UP)
    with pytest.raises(RuntimeError, match="not been set up as an OUTPUT"):
        g.output(PIN, g.HIGH)
    with pytest.raises(ValueError, match="Bouncetime must be greater than 0"):
        g.add_event_detect(PIN, g.BOTH, bouncetime=0)
    with pytest.raises(ValueError, match="RISING, FALLING or BOTH"):
        g.add_event_detect(PIN, 7)
    with pytest.raises(TypeError):
        g.add_event_detect(PIN, g.BOTH, bouncetime=None)
    g.add_event_detect(PIN, g.BOTH)
    with pytest.raises(RuntimeError, match="Conflicting edge detection"):
        g.add_event_detect(PIN, g.BOTH)
    with pytest.raises(RuntimeError, match="as an output first"):
        g.PWM(PIN, 100)
    g.setup(LED_PIN, g.OUT)
    with pytest.raises(RuntimeError, match="as an input first"):
        g.add_event_detect(LED_PIN, g.RISING)
    with pytest.raises(ValueError, match=r"frequency must be greater than 0\.0"):
        g.PWM(LED_PIN, 0)
    pwm = g.PWM(LED_PIN, 100)
    with pytest.raises(RuntimeError, match="already exists"):
        g.PWM(LED_PIN, 100)
    with pytest.raises(ValueError, match=r"0\.0 to 100\.0"):
        pwm.start(101)
    pwm.stop()
    g.PWM(LED_PIN, 50).start(10)  # a stopped PWM frees the pin
    assert [c.name for c in g.calls][:2] == ["setup", "setmode"]


def test_input_levels_follow_the_pull_and_the_wiring(gpio_double: GpioDouble) -> None:
    g = gpio_double
    g.setmode(g.BCM)
    g.setup([5, 6], g.IN, pull_up_down=g.PUD_UP)
    g.setup(13, g.IN, pull_up_down=g.PUD_DOWN)
    g.setup(19, g.IN)
    assert [g.input(p) for p in (5, 13, 19)] == [g.HIGH, g.LOW, g.LOW]
    g.press(5)
    g.press(13)
    g.press(19, active_low=False)
    assert [g.input(p) for p in (5, 6, 13, 19)] == [g.LOW, g.HIGH, g.HIGH, g.HIGH]
    with pytest.raises(ValueError, match="no pull"):
        g.press(26)


def test_callbacks_run_on_another_thread_and_honour_bouncetime(gpio_double: GpioDouble) -> None:
    g = gpio_double
    g.setmode(g.BCM)
    g.setup(PIN, g.IN, pull_up_down=g.PUD_UP)
    seen: list[tuple[int, int, str]] = []
    g.add_event_detect(PIN, g.BOTH, callback=lambda ch: seen.append(
        (ch, g.input(ch), threading.current_thread().name)), bouncetime=50)
    g.press(PIN, at=1.0)
    g.release(PIN, at=1.02)  # within 50 ms of the last reported edge: dropped
    g.press(PIN, at=1.03)
    g.release(PIN, at=1.2)
    g.flush()
    assert [s[0] for s in seen] == [PIN, PIN]
    assert all(s[2] != threading.current_thread().name for s in seen)
    assert g.event_detected(PIN) and not g.event_detected(PIN)


def test_edges_without_a_time_are_now_on_the_real_clock(gpio_double: GpioDouble) -> None:
    """Driven without `at`, edges a bouncetime apart in real time are all reported, and ones
    closer than that are dropped, as on the real poll thread."""
    g = gpio_double
    g.setmode(g.BCM)
    g.setup(PIN, g.IN, pull_up_down=g.PUD_UP)
    seen: list[int] = []
    g.add_event_detect(PIN, g.BOTH, callback=lambda ch: seen.append(g.input(ch)),
                       bouncetime=30)
    for drive, wait_s in ((g.press, 0.05), (g.release, 0.0), (g.press, 0.05), (g.release, 0.0)):
        drive(PIN)  # the second press comes at once: within the bouncetime, dropped
        g.flush()
        time.sleep(wait_s)
    assert seen == [g.LOW, g.HIGH, g.HIGH]  # the level read when each callback ran
    assert g.time >= 0.1


def test_falling_only_and_board_numbering(gpio_double: GpioDouble) -> None:
    g = gpio_double
    g.setmode(g.BOARD)
    g.setup(11, g.IN, pull_up_down=g.PUD_UP)  # header pin 11 is GPIO17
    seen: list[int] = []
    g.add_event_detect(11, g.FALLING, callback=seen.append)
    g.press(17, at=1.0)
    g.release(17, at=2.0)
    g.flush()
    assert seen == [11]


def test_cleanup(gpio_double: GpioDouble) -> None:
    g = gpio_double
    g.setmode(g.BCM)
    with pytest.warns(RuntimeWarning, match="nothing to clean up"):
        g.cleanup()
    g.setmode(g.BCM)
    g.setup(PIN, g.IN, pull_up_down=g.PUD_UP)
    g.add_event_detect(PIN, g.BOTH)
    g.cleanup(PIN)
    assert g.getmode() == g.BCM
    with pytest.raises(RuntimeError, match="first"):
        g.input(PIN)
    g.setup(PIN, g.IN)
    g.cleanup()
    assert g.getmode() is None


def test_a_garbage_collected_pwm_stops(gpio_double: GpioDouble) -> None:
    g = gpio_double
    g.setmode(g.BCM)
    g.setup(LED_PIN, g.OUT)
    g.PWM(LED_PIN, 100).start(50)
    gc.collect()
    g.PWM(LED_PIN, 100)  # no "already exists": the first one is gone


# ------------------------------------------------------------------ Button


async def test_button_edges_arrive_on_the_loop(gpio_double: GpioDouble) -> None:
    g = gpio_double
    loop = asyncio.get_running_loop()
    got: list[tuple[bool, float, bool]] = []
    arrived = asyncio.Event()

    def on_loop(pressed: bool, at: float) -> None:
        got.append((pressed, at, threading.current_thread() is threading.main_thread()))
        if len(got) == 2:
            arrived.set()

    def threadsafe(pressed: bool, at: float) -> None:
        loop.call_soon_threadsafe(on_loop, pressed, at)

    button = Button(PIN, pull="up", active_low=True, bouncetime_ms=30, on_edge=threadsafe,
                    gpio_module=g, clock=lambda: g.time)
    g.press(PIN, at=1.0)
    g.flush()
    g.release(PIN, at=1.5)
    await asyncio.wait_for(arrived.wait(), 5)
    assert got == [(True, 1.0, True), (False, 1.5, True)]
    setup = g.calls_named("setup")[0]
    assert setup.args == (PIN, g.IN) and setup.kwargs["pull_up_down"] == g.PUD_UP
    detect = g.calls_named("add_event_detect")[0]
    assert detect.args == (PIN, g.BOTH) and detect.kwargs["bouncetime"] == 30
    button.close()
    assert [c.name for c in g.calls[-2:]] == ["remove_event_detect", "cleanup"]


def test_button_active_high_with_pull_down_and_no_bouncetime(gpio_double: GpioDouble) -> None:
    g = gpio_double
    edges: list[bool] = []
    button = Button(PIN, pull="down", active_low=False, bouncetime_ms=0,
                    on_edge=lambda p, t: edges.append(p), gpio_module=g)
    assert "bouncetime" not in g.calls_named("add_event_detect")[0].kwargs
    g.press(PIN, at=1.0)
    g.flush()
    assert button.pressed and g.level(PIN) == g.HIGH and edges == [True]
    button.close()


def test_button_sample_recovers_a_release_dropped_by_bouncetime(gpio_double: GpioDouble) -> None:
    g = gpio_double
    edges: list[bool] = []
    button = Button(PIN, bouncetime_ms=30, on_edge=lambda p, t: edges.append(p), gpio_module=g)
    g.press(PIN, at=1.0)
    g.flush()
    g.release(PIN, at=1.01)  # RPi.GPIO drops it: within the bouncetime
    g.flush()
    assert edges == [True]
    button.sample()
    assert edges[-1] is False
    button.sample()
    assert edges.count(False) == 1
    button.close()


def test_button_on_a_bad_pin_is_a_device_error(gpio_double: GpioDouble) -> None:
    with pytest.raises(DeviceError) as info:
        Button(60, on_edge=lambda p, t: None, gpio_module=gpio_double)
    assert info.value.device == "GPIO60" and "invalid" in str(info.value)


def test_button_gestures_machine_end_to_end(gpio_double: GpioDouble) -> None:
    """A real press and release over the double drive a push-to-talk turn."""
    g = gpio_double
    gestures = ButtonGestures()
    machine = m.DeviceMachine("push_to_talk")
    for inp in (m.Booted(), m.Connected()):
        machine.handle(inp, 0.0)
    actions: list = []

    def on_edge(pressed: bool, at: float) -> None:
        for gesture in gestures.edge(pressed, at):
            actions.extend(machine.handle(gesture, at))

    button = Button(PIN, on_edge=on_edge, gpio_module=g, clock=lambda: g.time)
    g.press(PIN, at=1.0)
    g.flush()
    assert machine.state is m.State.LISTENING and machine.streaming
    g.release(PIN, at=2.0)
    g.flush()
    assert machine.state is m.State.THINKING
    assert actions == [m.ClearInput(), m.SendPreroll(), m.CommitInput()]
    button.close()


# ------------------------------------------------------------------ Led


def duties(g: GpioDouble, pin: int) -> list[float]:
    return [d for _, d in g.duty_history(pin)]


def test_led_steady_patterns_set_the_duty_cycle_once(gpio_double: GpioDouble) -> None:
    g = gpio_double
    led = Led(LED_PIN, pwm_hz=200, gpio_module=g)
    assert g.calls_named("PWM")[0].args == (LED_PIN, 200)
    for kind, duty in (("solid", 100.0), ("dim", DIM_LEVEL * 100), ("off", 0.0)):
        led.show(LedPattern(kind=kind), kind)
        for i in range(50):
            led.tick(i * 0.02)
        assert duties(g, LED_PIN)[-1] == duty
    assert duties(g, LED_PIN) == [0.0, 100.0, 10.0, 0.0]
    led.close()
    assert [c.name for c in g.calls[-2:]] == ["PWM.stop", "cleanup"]
    assert g.calls[-1].args == ((LED_PIN,),)


def test_led_blink_and_pulse(gpio_double: GpioDouble) -> None:
    g = gpio_double
    led = Led(LED_PIN, gpio_module=g)
    led.show(LedPattern(kind="blink", rate_hz=2.0), "offline")
    start = len(duties(g, LED_PIN))
    for i in range(50):  # one second at 20 ms
        led.tick(10.0 + i * 0.02)
    # on when shown; off at 250 ms, on at 500 ms, off at 750 ms
    assert duties(g, LED_PIN)[start - 1:] == [100.0, 0.0, 100.0, 0.0]
    led.show(LedPattern(kind="pulse", rate_hz=1.0), "thinking")
    start = len(duties(g, LED_PIN))
    for i in range(51):
        led.tick(20.0 + i * 0.02)
    pulse = duties(g, LED_PIN)[start:]
    assert max(pulse) == 100.0 and min(pulse) == 0.0
    assert len(set(pulse)) > 20  # a smooth ramp, not an on/off
    peak = pulse.index(100.0)
    assert pulse[:peak] == sorted(pulse[:peak])  # rises to the peak at half a period
    led.close()


@pytest.mark.parametrize("state", list(m.State))
def test_led_shows_every_default_pattern(gpio_double: GpioDouble, state: m.State) -> None:
    g = gpio_double
    led = Led(LED_PIN, gpio_module=g)
    pattern = DEFAULT_PATTERNS[state]
    led.show(pattern, state.value)
    for i in range(200):
        led.tick(i * 0.02)
    seen = set(duties(g, LED_PIN)[1:])
    expected = {"off": {0.0}, "dim": {10.0}, "solid": {100.0}, "blink": {0.0, 100.0}}
    if pattern.kind == "pulse":
        assert min(seen) < 5 and max(seen) > 95 and len(seen) > 10
    else:
        assert seen == expected[pattern.kind] or seen == expected[pattern.kind] - {0.0}
    led.close()


def test_rgb_led_colours_and_active_low(gpio_double: GpioDouble) -> None:
    g = gpio_double
    pins = (5, 6, 13)
    led = Led(pins, active_low=True, gpio_module=g)
    assert [c.kwargs["initial"] for c in g.calls_named("setup")] == [g.HIGH] * 3
    led.show(LedPattern(kind="solid", color=(255, 136, 0)), "listening")
    assert [duties(g, p)[-1] for p in pins] == [0.0, 46.7, 100.0]  # inverted
    led.close()


def test_led_needs_one_or_three_pins(gpio_double: GpioDouble) -> None:
    with pytest.raises(DeviceError, match="one pin or three"):
        Led((5, 6), gpio_module=gpio_double)


# ------------------------------------------------------------------ simulated button and LED


async def test_sim_button_plays_a_script_into_gestures() -> None:
    edges: list[tuple[bool, float]] = []
    done = asyncio.Event()
    clock = asyncio.get_running_loop().time

    def on_edge(pressed: bool, at: float) -> None:
        edges.append((pressed, at))
        if len(edges) == 4:
            done.set()

    button = SimButton(on_edge, script=[(0.01, True), (0.05, False), (0.06, True),
                                        (0.40, False)], clock=clock)
    await asyncio.wait_for(done.wait(), 5)
    button.close()
    assert [p for p, _ in edges] == [True, False, True, False]
    gestures = ButtonGestures(debounce_ms=5, min_hold_ms=250)
    out = [g for pressed, at in edges for g in gestures.edge(pressed, at)]
    kinds = [type(g) for g in out]
    assert kinds == [m.ButtonDown, m.ButtonUp, m.Tap, m.ButtonDown, m.ButtonUp]
    assert not out[-1].short


async def test_sim_button_enter_toggles() -> None:
    read_fd, write_fd = os.pipe()
    edges: list[bool] = []
    five = asyncio.Event()

    def on_edge(pressed: bool, at: float) -> None:
        edges.append(pressed)
        if len(edges) == 5:
            five.set()

    with os.fdopen(read_fd, "r") as stdin:
        button = SimButton(on_edge, keyboard=True, stdin=stdin)
        os.write(write_fd, b"\n")
        os.write(write_fd, b"\n\n\n\n")
        os.close(write_fd)  # EOF: the reader is removed
        await asyncio.wait_for(five.wait(), 5)
        button.close()
    assert edges == [True, False, True, False, True]
    assert button.pressed


def test_sim_led_writes_one_line_per_change() -> None:
    lines: list[str] = []
    led = SimLed(lines.append)
    led.show(DEFAULT_PATTERNS[m.State.THINKING], "thinking")
    led.tick(1.0)
    led.show(DEFAULT_PATTERNS[m.State.THINKING], "thinking")
    led.show(LedPattern(kind="off"), "off")
    led.close()
    assert lines == ["LED: thinking -> pulse 1.0 Hz #ffa000", "LED: off -> off"]
