"""A faithful test double of the `RPi.GPIO` module, and the `gpio_double` fixture.

Semantics and error messages follow RPi.GPIO 0.7.1 (source/py_gpio.c, py_pwm.c,
event_gpio.c, soft_pwm.c): setup/input/output/PWM before `setmode` raise RuntimeError;
`output` on a pin not set up as an output, `add_event_detect` twice or on a non-input,
a second PWM on one pin raise RuntimeError; bad modes, edges, bouncetimes, duty cycles
and frequencies raise ValueError. Edge callbacks run on one separate thread, in order,
with the channel number as argument; an edge within `bouncetime` ms of the last reported
one is dropped, as the real poll thread does. Not modelled: `wait_for_edge`, the
"channel already in use" warning (it depends on the pin's state before the program),
hardware PWM.

Test side (pins are BCM numbers): `press(pin, at=...)` / `release(pin, at=...)` drive the
input level (pressed = LOW with a pull-up, HIGH with a pull-down; with no pull say
`active_low`; without `at` the edge is now: the simulated clock follows real time from the
double's creation, as the real poll thread's does), `flush()` waits for the callbacks,
`time` is the simulated clock every call is recorded with (`calls`), `duty_history(pin)` is
the PWM duty cycles set on a pin.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import types
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

_SETMODE_FIRST = (
    "Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) or GPIO.setmode(GPIO.BCM)"
)
_BAD_CHANNEL = "The channel sent is invalid on a Raspberry Pi"
_NO_NUMBER = -666  # the C module's "argument not given"

BOARD_TO_BCM = {
    3: 2,
    5: 3,
    7: 4,
    8: 14,
    10: 15,
    11: 17,
    12: 18,
    13: 27,
    15: 22,
    16: 23,
    18: 24,
    19: 10,
    21: 9,
    22: 25,
    23: 11,
    24: 8,
    26: 7,
    27: 0,
    28: 1,
    29: 5,
    31: 6,
    32: 12,
    33: 13,
    35: 19,
    36: 16,
    37: 26,
    38: 20,
    40: 21,
}
"""Header pin -> BCM number on a 40-pin board."""


@dataclass(frozen=True, slots=True)
class Call:
    """One call into the module, at simulated time `t`."""

    t: float
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass(slots=True)
class _Detect:
    edge: int
    bouncetime: int
    callbacks: list[Callable[[int], Any]] = field(default_factory=list)
    lastcall: float | None = None
    occurred: bool = False


class _Pwm:
    """RPi.GPIO.PWM: software PWM on an output pin."""

    _gpio: GpioDouble

    def __init__(self, channel: int, frequency: float) -> None:
        g = self._gpio
        g._record("PWM", (channel, frequency), {})
        with g._lock:
            pin = g._bcm(channel)
            if pin in g._pwms:
                raise RuntimeError("A PWM object already exists for this GPIO channel")
            if g._direction.get(pin) != g.OUT:
                raise RuntimeError("You must setup() the GPIO channel as an output first")
            if frequency <= 0.0:
                raise ValueError("frequency must be greater than 0.0")
            self._pin = pin
            self.frequency = float(frequency)
            self.dutycycle = 0.0
            g._pwms[pin] = self

    def start(self, dutycycle: float) -> None:
        """Start with `dutycycle` percent."""
        self._set(dutycycle, "PWM.start")

    def ChangeDutyCycle(self, dutycycle: float) -> None:
        """Change the duty cycle (percent)."""
        self._set(dutycycle, "PWM.ChangeDutyCycle")

    def ChangeFrequency(self, frequency: float) -> None:
        """Change the frequency (Hz)."""
        self._gpio._record("PWM.ChangeFrequency", (self._pin, frequency), {})
        if frequency <= 0.0:
            raise ValueError("frequency must be greater than 0.0")
        self.frequency = float(frequency)

    def stop(self) -> None:
        """Stop; the real PWM thread leaves the pin LOW."""
        g = self._gpio
        g._record("PWM.stop", (self._pin,), {})
        with g._lock:
            if g._pwms.get(self._pin) is self:
                del g._pwms[self._pin]
                g._out_level[self._pin] = g.LOW
                g._duty.setdefault(self._pin, []).append((g.time, 0.0))

    def _set(self, dutycycle: float, name: str) -> None:
        g = self._gpio
        g._record(name, (self._pin, dutycycle), {})
        if not 0.0 <= dutycycle <= 100.0:
            raise ValueError("dutycycle must have a value from 0.0 to 100.0")
        with g._lock:
            self.dutycycle = float(dutycycle)
            if g._pwms.get(self._pin) is self:
                g._duty.setdefault(self._pin, []).append((g.time, float(dutycycle)))


class GpioDouble(types.ModuleType):
    """Stands in for the `RPi.GPIO` module (inject it as sys.modules["RPi.GPIO"])."""

    HIGH = 1
    LOW = 0
    OUT = 0
    IN = 1
    HARD_PWM = 43
    SERIAL = 40
    I2C = 42
    SPI = 41
    UNKNOWN = -1
    BOARD = 10
    BCM = 11
    PUD_OFF = 20
    PUD_DOWN = 21
    PUD_UP = 22
    RISING = 31
    FALLING = 32
    BOTH = 33
    VERSION = "0.7.1"
    RPI_REVISION = 3
    RPI_INFO: ClassVar[dict[str, Any]] = {
        "P1_REVISION": 3,
        "TYPE": "Pi 4 Model B",
        "RAM": "4G",
        "MANUFACTURER": "Sony",
        "PROCESSOR": "BCM2711",
        "REVISION": "c03112",
    }

    def __init__(self) -> None:
        super().__init__("RPi.GPIO", "test double of RPi.GPIO")
        self.time = 0.0
        self._born = time.monotonic()
        self.calls: list[Call] = []
        self.callback_errors: list[BaseException] = []
        self.PWM = type("PWM", (_Pwm,), {"_gpio": self})
        self._lock = threading.RLock()
        self._mode: int | None = None
        self._warnings = True
        self._direction: dict[int, int] = {}
        self._pull: dict[int, int] = {}
        self._out_level: dict[int, int] = {}
        self._pressed: dict[int, bool] = {}
        self._active_low: dict[int, bool] = {}
        self._detect: dict[int, _Detect] = {}
        # weak: the real PWM object stops its thread when it is garbage collected
        self._pwms: weakref.WeakValueDictionary[int, _Pwm] = weakref.WeakValueDictionary()
        self._duty: dict[int, list[tuple[float, float]]] = {}
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the module API

    def setmode(self, mode: int) -> None:
        """Choose BOARD or BCM numbering, once."""
        self._record("setmode", (mode,), {})
        if self._mode is not None and mode != self._mode:
            raise ValueError("A different mode has already been set!")
        if mode not in (self.BOARD, self.BCM):
            raise ValueError("An invalid mode was passed to setmode()")
        self._mode = mode

    def getmode(self) -> int | None:
        """BOARD, BCM, or None before setmode."""
        self._record("getmode", (), {})
        return self._mode

    def setwarnings(self, flag: bool) -> None:
        """Enable or disable warnings."""
        self._record("setwarnings", (flag,), {})
        self._warnings = bool(flag)

    def setup(
        self,
        channel: int | list[int] | tuple[int, ...],
        direction: int,
        pull_up_down: int = PUD_OFF,
        initial: int = _NO_NUMBER,
    ) -> None:
        """Set up one channel or a list of channels as IN or OUT."""
        self._record_given("setup", (channel, direction),
                           pull_up_down=pull_up_down, initial=initial)
        channels = self._channels(channel)
        if direction not in (self.IN, self.OUT):
            raise ValueError("An invalid direction was passed to setup()")
        if direction == self.OUT and pull_up_down != self.PUD_OFF:
            raise ValueError("pull_up_down parameter is not valid for outputs")
        if direction == self.IN and initial != _NO_NUMBER:
            raise ValueError("initial parameter is not valid for inputs")
        if pull_up_down not in (self.PUD_OFF, self.PUD_DOWN, self.PUD_UP):
            raise ValueError(
                "Invalid value for pull_up_down - should be either PUD_OFF, PUD_UP or PUD_DOWN"
            )
        with self._lock:
            for ch in channels:
                pin = self._bcm(ch)
                if direction == self.OUT and initial in (self.LOW, self.HIGH):
                    self._out_level[pin] = initial
                self._direction[pin] = direction
                self._pull[pin] = pull_up_down

    def gpio_function(self, channel: int) -> int:
        """IN or OUT as set up (pins never set up read as IN)."""
        self._record("gpio_function", (channel,), {})
        with self._lock:
            return self._direction.get(self._bcm(channel), self.IN)

    def input(self, channel: int) -> int:
        """The level of a set-up channel: HIGH (1) or LOW (0)."""
        self._record("input", (channel,), {})
        with self._lock:
            pin = self._bcm(channel)
            if pin not in self._direction:
                raise RuntimeError("You must setup() the GPIO channel first")
            return self._level(pin)

    def output(self, channel: int | list[int] | tuple[int, ...], value: Any) -> None:
        """Drive one output (or a list of outputs) HIGH or LOW."""
        self._record("output", (channel, value), {})
        channels = self._channels(channel)
        values = list(value) if isinstance(value, list | tuple) else [value] * len(channels)
        if len(values) != len(channels):
            raise RuntimeError("Number of channels != number of values")
        with self._lock:
            for ch, v in zip(channels, values, strict=True):
                if not isinstance(v, int):
                    raise ValueError("Value must be an integer or boolean")
                pin = self._bcm(ch)
                if self._direction.get(pin) != self.OUT:
                    raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
                self._out_level[pin] = self.HIGH if v else self.LOW

    def add_event_detect(
        self, channel: int, edge: int, callback: Any = None, bouncetime: int = _NO_NUMBER
    ) -> None:
        """Watch a set-up input for RISING, FALLING or BOTH edges."""
        self._record_given("add_event_detect", (channel, edge),
                           callback=callback, bouncetime=bouncetime)
        if callback is not None and not callable(callback):
            raise TypeError("Parameter must be callable")
        if not isinstance(bouncetime, int):
            raise TypeError(
                f"'{type(bouncetime).__name__}' object cannot be interpreted as an integer"
            )
        with self._lock:
            pin = self._bcm(channel)
            if self._direction.get(pin) != self.IN:
                raise RuntimeError("You must setup() the GPIO channel as an input first")
            if edge not in (self.RISING, self.FALLING, self.BOTH):
                raise ValueError("The edge must be set to RISING, FALLING or BOTH")
            if bouncetime <= 0 and bouncetime != _NO_NUMBER:
                raise ValueError("Bouncetime must be greater than 0")
            if pin in self._detect:
                raise RuntimeError(
                    "Conflicting edge detection already enabled for this GPIO channel"
                )
            self._detect[pin] = _Detect(edge=edge, bouncetime=bouncetime)
            if callback is not None:
                self._detect[pin].callbacks.append(callback)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._poll_thread, name="RPi.GPIO-double", daemon=True
                )
                self._thread.start()

    def add_event_callback(self, channel: int, callback: Any) -> None:
        """One more callback on a channel that already has edge detection."""
        self._record("add_event_callback", (channel, callback), {})
        if not callable(callback):
            raise TypeError("Parameter must be callable")
        with self._lock:
            pin = self._bcm(channel)
            if self._direction.get(pin) != self.IN:
                raise RuntimeError("You must setup() the GPIO channel as an input first")
            if pin not in self._detect:
                raise RuntimeError(
                    "Add event detection using add_event_detect first before adding a callback"
                )
            self._detect[pin].callbacks.append(callback)

    def remove_event_detect(self, channel: int) -> None:
        """Stop watching a channel and drop its callbacks (no error when not watched)."""
        self._record("remove_event_detect", (channel,), {})
        with self._lock:
            self._detect.pop(self._bcm(channel), None)

    def event_detected(self, channel: int) -> bool:
        """True once after an edge was detected on the channel."""
        self._record("event_detected", (channel,), {})
        with self._lock:
            detect = self._detect.get(self._bcm(channel))
            if detect is None or not detect.occurred:
                return False
            detect.occurred = False
            return True

    def cleanup(self, channel: int | list[int] | tuple[int, ...] | None = None) -> None:
        """Return channels (all when None; then the mode too) to inputs without pull."""
        self._record("cleanup", () if channel is None else (channel,), {})
        with self._lock:
            if channel is None:
                pins = list(self._direction)
                self._detect.clear()
                self._mode = None
            else:
                pins = [self._bcm(ch) for ch in self._channels(channel)]
                for pin in pins:
                    self._detect.pop(pin, None)
            found = [pin for pin in pins if pin in self._direction]
            for pin in found:
                del self._direction[pin]
                self._pull.pop(pin, None)
        if not found and self._warnings:
            warnings.warn(
                "No channels have been set up yet - nothing to clean up!  Try "
                "cleaning up at the end of your program instead!",
                RuntimeWarning,
                stacklevel=2,
            )

    # ------------------------------------------------------------------ the test side

    def press(self, pin: int, *, at: float | None = None, active_low: bool | None = None) -> None:
        """Press the button on BCM `pin` at simulated time `at` (default: now)."""
        self._drive(pin, True, at, active_low)

    def release(self, pin: int, *, at: float | None = None) -> None:
        """Release the button on BCM `pin`."""
        self._drive(pin, False, at, None)

    def level(self, pin: int) -> int:
        """The level of BCM `pin` now."""
        with self._lock:
            return self._level(pin)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued edge callback has run."""
        with self._queue.all_tasks_done:
            if not self._queue.all_tasks_done.wait_for(
                lambda: self._queue.unfinished_tasks == 0, timeout
            ):
                raise TimeoutError("GPIO callbacks still pending")

    def duty_history(self, pin: int) -> list[tuple[float, float]]:
        """(time, duty %) of every duty cycle set on BCM `pin` (0 when its PWM stopped)."""
        with self._lock:
            return list(self._duty.get(pin, []))

    def calls_named(self, name: str) -> list[Call]:
        """The recorded calls of one function."""
        return [c for c in self.calls if c.name == name]

    def close(self) -> None:
        """Stop the callback thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    # ------------------------------------------------------------------ internals

    def _record(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(Call(self.time, name, args, kwargs))

    def _record_given(self, name: str, args: tuple[Any, ...], **kwargs: Any) -> None:
        """Record the keyword arguments the caller gave (not those left at their default)."""
        self._record(name, args, {k: v for k, v in kwargs.items()
                                  if v is not None and v != _NO_NUMBER})

    def _channels(self, channel: Any) -> list[int]:
        if isinstance(channel, list | tuple):
            if not all(isinstance(ch, int) for ch in channel):
                raise ValueError("Channel must be an integer")
            return list(channel)
        if not isinstance(channel, int):
            raise ValueError("Channel must be an integer or list/tuple of integers")
        return [channel]

    def _bcm(self, channel: int) -> int:
        """get_gpio_number(): the BCM number of a channel in the current numbering."""
        if self._mode is None:
            raise RuntimeError(_SETMODE_FIRST)
        if self._mode == self.BCM:
            if not 0 <= channel <= 53:
                raise ValueError(_BAD_CHANNEL)
            return channel
        if channel not in BOARD_TO_BCM:
            raise ValueError(_BAD_CHANNEL)
        return BOARD_TO_BCM[channel]

    def _channel(self, pin: int) -> int:
        """chan_from_gpio(): the channel number callbacks get, in the current numbering."""
        if self._mode == self.BOARD:
            return next(ch for ch, bcm in BOARD_TO_BCM.items() if bcm == pin)
        return pin

    def _level(self, pin: int) -> int:
        if self._direction.get(pin) == self.OUT:
            return self._out_level.get(pin, self.LOW)
        if self._pressed.get(pin, False):
            return self.LOW if self._active_low[pin] else self.HIGH
        return self.HIGH if self._pull.get(pin) == self.PUD_UP else self.LOW

    def _drive(self, pin: int, pressed: bool, at: float | None, active_low: bool | None) -> None:
        with self._lock:
            if at is None:  # now: real time passes, and never before a simulated `at`
                at = max(self.time, time.monotonic() - self._born)
            if at < self.time:
                raise ValueError(f"time runs forward: {at} < {self.time}")
            self.time = at
            if self._direction.get(pin) == self.OUT:
                raise ValueError(f"GPIO{pin} is an output: a button cannot drive it")
            if pressed:
                if active_low is None:
                    pull = self._pull.get(pin, self.PUD_OFF)
                    if pull == self.PUD_OFF:
                        raise ValueError(f"GPIO{pin} has no pull resistor: say active_low")
                    active_low = pull == self.PUD_UP
                self._active_low[pin] = active_low
            before = self._level(pin)
            self._pressed[pin] = pressed
            after = self._level(pin)
            detect = self._detect.get(pin)
            if detect is None or before == after or self._direction.get(pin) != self.IN:
                return
            edge = self.RISING if after == self.HIGH else self.FALLING
            if detect.edge not in (edge, self.BOTH):
                return
            t = self.time
            bounce_s = detect.bouncetime / 1e3
            if (
                detect.bouncetime == _NO_NUMBER
                or detect.lastcall is None
                or t - detect.lastcall > bounce_s
                or detect.lastcall > t
            ):
                detect.lastcall = t
                detect.occurred = True
                self._queue.put(pin)

    def _poll_thread(self) -> None:
        while True:
            pin = self._queue.get()
            try:
                if pin is None:
                    return
                with self._lock:
                    detect = self._detect.get(pin)
                    callbacks = list(detect.callbacks) if detect else []
                    channel = self._channel(pin)
                for callback in callbacks:
                    try:
                        callback(channel)
                    except Exception as exc:  # the real thread prints it and carries on
                        self.callback_errors.append(exc)
            finally:
                self._queue.task_done()


@pytest.fixture
def gpio_double(monkeypatch: pytest.MonkeyPatch) -> Iterator[GpioDouble]:
    """A fresh `RPi.GPIO` double, importable as `RPi.GPIO`; fails the test if a callback
    raised."""
    double = GpioDouble()
    package = types.ModuleType("RPi")
    package.__path__ = []
    package.GPIO = double  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "RPi", package)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", double)
    yield double
    double.close()
    assert not double.callback_errors, f"GPIO callbacks raised: {double.callback_errors!r}"
