"""The button and the status LED on the `RPi.GPIO` API (BCM pin numbers).

`RPi.GPIO` is imported lazily by `load_gpio()`, so pivox imports on any machine; tests
and other boards pass a module with the same API as `gpio_module`. On a Raspberry Pi 5
the original `RPi.GPIO` cannot reach the GPIO chip: install `rpi-lgpio` (it provides the
same `RPi.GPIO` module on top of lgpio; uninstall `RPi.GPIO` first).

Threads: RPi.GPIO calls edge callbacks on its own thread, so `Button` calls `on_edge` on
that thread; the caller passes a thread-safe callback (`pivox.cli.hardware.on_loop` hands it
to the asyncio loop with `call_soon_threadsafe`). `Led` has no thread: the owner calls
`tick(now)` every ~20 ms and the blink/pulse brightness is set from it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

from pivox.core.errors import DeviceError
from pivox.core.led import LedPattern, brightness
from pivox.host.optional import MissingDependency, require

log = logging.getLogger("pivox.gpio")

Pull = Literal["up", "down", "off"]
_PULL_NAMES: dict[str, str] = {"up": "PUD_UP", "down": "PUD_DOWN", "off": "PUD_OFF"}


def load_gpio() -> ModuleType:
    """The `RPi.GPIO` module; raises DeviceError naming the import error when unusable."""
    try:
        return require("RPi.GPIO", "RPi.GPIO", "pi", apt="python3-rpi-lgpio")
    except MissingDependency as exc:
        raise DeviceError(f"not installed: {exc.install}; on a Raspberry Pi 5 use rpi-lgpio, "
                          "which provides the same module", device="RPi.GPIO") from None
    except RuntimeError as exc:  # RPi.GPIO off a Pi: "can only be run on a Raspberry Pi"
        raise DeviceError(f"cannot use RPi.GPIO ({exc}); on a Raspberry Pi 5 install "
                          "rpi-lgpio, which provides the same module", device="RPi.GPIO") from exc


def _prepare(gpio: Any) -> None:
    """Select BCM numbering once per process; refuse a module already set to BOARD."""
    gpio.setwarnings(False)
    mode = gpio.getmode()
    if mode is None:
        gpio.setmode(gpio.BCM)
    elif mode != gpio.BCM:
        raise DeviceError("pin numbering is already BOARD; pivox uses BCM numbers",
                          device="RPi.GPIO")


def _device_error(pin: int, what: str, exc: Exception) -> DeviceError:
    return DeviceError(f"cannot set up {what}: {exc}", device=f"GPIO{pin}")


class Button:
    """A push button on BCM `pin`; reports every level change as `on_edge(pressed, at)`.

    `at` is `clock()` (monotonic seconds) when RPi.GPIO ran the callback. `bouncetime_ms`
    (0: none) is RPi.GPIO's own filter: it drops any edge within that time of the last one
    it reported, which can drop the edge that ends a bounce; `sample()` (call it every
    tick) reports a level that differs from the last one reported, so no release is lost.
    Software debouncing is `ButtonGestures`' job.
    """

    def __init__(
        self,
        pin: int,
        *,
        pull: Pull = "up",
        active_low: bool = True,
        bouncetime_ms: int = 30,
        on_edge: Callable[[bool, float], None],
        gpio_module: ModuleType | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        gpio: Any = gpio_module or load_gpio()
        self._gpio = gpio
        self.pin = pin
        self._active_level = gpio.LOW if active_low else gpio.HIGH
        self._on_edge = on_edge
        self._clock = clock
        self._last: bool | None = None
        self._lock = threading.Lock()  # RPi.GPIO's thread and sample() both report
        try:
            _prepare(gpio)
            gpio.setup(pin, gpio.IN, pull_up_down=getattr(gpio, _PULL_NAMES[pull]))
            self._last = self.pressed
            detect: dict[str, Any] = {"callback": self._on_gpio}
            if bouncetime_ms > 0:
                detect["bouncetime"] = bouncetime_ms
            gpio.add_event_detect(pin, gpio.BOTH, **detect)
        except (RuntimeError, ValueError) as exc:
            raise _device_error(pin, "the button", exc) from exc
        log.info("button on GPIO%d (pull %s, active %s)", pin, pull,
                 "low" if active_low else "high")

    @property
    def pressed(self) -> bool:
        """The button's level now."""
        return bool(self._gpio.input(self.pin) == self._active_level)

    def sample(self) -> None:
        """Report the level if it differs from the last reported (an edge RPi.GPIO dropped)."""
        self._report()

    def close(self) -> None:
        """Stop edge detection and release the pin."""
        self._gpio.remove_event_detect(self.pin)
        self._gpio.cleanup(self.pin)

    def _on_gpio(self, channel: int) -> None:
        """RPi.GPIO's thread: which edge it was is read from the level now."""
        self._report()

    def _report(self) -> None:
        with self._lock:
            pressed = self.pressed
            if pressed != self._last:
                self._last = pressed
                self._on_edge(pressed, self._clock())


class Led:
    """A status LED driven by software PWM: one pin, or three (red, green, blue).

    `show(pattern, state)` switches pattern (the blink/pulse phase restarts at the next
    `tick`); `tick(now)` sets the duty cycle for time `now`. The duty cycle is only changed
    when it differs, so a steady pattern costs nothing per tick. `active_low` is for an LED
    wired to 3V3 (a common-anode RGB LED).
    """

    def __init__(
        self,
        pins: int | tuple[int, ...],
        *,
        pwm_hz: float = 200,
        active_low: bool = False,
        gpio_module: ModuleType | None = None,
    ) -> None:
        gpio: Any = gpio_module or load_gpio()
        self._gpio = gpio
        self.pins = (pins,) if isinstance(pins, int) else tuple(pins)
        if len(self.pins) not in (1, 3):
            raise DeviceError(f"an LED has one pin or three (RGB), got {len(self.pins)}",
                              device="LED")
        self._active_low = active_low
        self._pwms: list[Any] = []
        self._duties: list[float] = []
        self._pattern = LedPattern(kind="off")
        self._shown_at: float | None = None
        _prepare(gpio)
        for pin in self.pins:
            try:
                gpio.setup(pin, gpio.OUT, initial=gpio.HIGH if active_low else gpio.LOW)
                pwm = gpio.PWM(pin, pwm_hz)
                pwm.start(self._duty(0.0))
            except (RuntimeError, ValueError) as exc:
                self.close()
                raise _device_error(pin, "the LED", exc) from exc
            self._pwms.append(pwm)
            self._duties.append(self._duty(0.0))

    @property
    def pattern(self) -> LedPattern:
        """The pattern shown."""
        return self._pattern

    def show(self, pattern: LedPattern, state: str = "") -> None:
        """Show `pattern` (for device state `state`, used in the debug log) from now on."""
        log.debug("LED: %s -> %s", state, pattern)
        self._pattern = pattern
        self._shown_at = None
        self._apply(brightness(pattern, 0.0))

    def tick(self, now: float) -> None:
        """Set the duty cycle for time `now` (monotonic seconds)."""
        if self._shown_at is None:
            self._shown_at = now
        self._apply(brightness(self._pattern, now - self._shown_at))

    def close(self) -> None:
        """Turn off, stop the PWM and release the pins."""
        for pwm in self._pwms:
            pwm.stop()
        self._pwms.clear()
        self._gpio.cleanup(self.pins)

    def _apply(self, level: float) -> None:
        color = self._pattern.color or (255, 255, 255)
        levels = [level] if len(self._pwms) == 1 else [level * c / 255 for c in color]
        for i, (pwm, value) in enumerate(zip(self._pwms, levels, strict=True)):
            duty = self._duty(value)
            if duty != self._duties[i]:
                pwm.ChangeDutyCycle(duty)
                self._duties[i] = duty

    def _duty(self, level: float) -> float:
        duty = round(level * 100, 1)
        return 100.0 - duty if self._active_low else duty
