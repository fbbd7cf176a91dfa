"""`pivox check`'s GPIO report, on the RPi.GPIO double: library, pins, whether they claim."""

from __future__ import annotations

import pytest

from pivox.cli.check import gpio_report, mqtt_report, run_check
from pivox.config import load_config
from tests.fixtures_mqtt import Broker
from tests.gpio_double import GpioDouble
from tests.pulse import PulseAudio


def test_check_reports_the_gpio_pins_it_claimed(
    gpio_double: GpioDouble, live_pulse: PulseAudio, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(None, ["server.url=ws://127.0.0.1:9/", "led.rgb_pins=[5, 6, 13]"])
    assert run_check(config, gpio_module=gpio_double) == 0
    out = capsys.readouterr().out
    assert "ok   GPIO library RPi.GPIO imports" in out
    assert "ok   button on BCM 17 (pull up) claimed" in out
    assert "ok   LED on BCM 5 6 13 claimed" in out
    # it really set the pins up as `pivox run` does, then released them
    assert [c.args[0] for c in gpio_double.calls_named("setup")] == [17, 5, 6, 13]
    assert [c.args[0] for c in gpio_double.calls_named("add_event_detect")] == [17]
    assert gpio_double.calls_named("cleanup")


def test_a_pin_already_claimed_is_a_failure_naming_the_pin(gpio_double: GpioDouble) -> None:
    gpio_double.setmode(gpio_double.BCM)
    gpio_double.setup(17, gpio_double.IN)
    gpio_double.add_event_detect(17, gpio_double.BOTH)  # another program's edge detection
    report = gpio_report(load_config(None, ["led.enabled=false"]), gpio_double)
    assert report[0] == (True, "GPIO library RPi.GPIO imports")
    ok, line = report[1]
    assert not ok and line.startswith("button on BCM 17: ") and "edge detection" in line


def test_no_gpio_in_use_is_said_so(gpio_double: GpioDouble) -> None:
    config = load_config(None, ["button.enabled=false", "led.enabled=false"])
    assert gpio_report(config, gpio_double) == [(True, "GPIO not used (button and LED disabled)")]


def test_check_reports_the_mqtt_broker(mosquitto: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(None, mosquitto.settings())
    assert mqtt_report(config) == [(True, f"MQTT broker 127.0.0.1:{mosquitto.port} as pivox "
                                          "accepts the connection (a password)")]
    monkeypatch.setenv("PIVOX_MQTT_PASSWORD", "wrong")
    ((ok, what),) = mqtt_report(config)
    assert not ok and "refuses it" in what and "wrong" not in what
    mosquitto.stop()
    ((ok, what),) = mqtt_report(config)
    assert not ok and "refuses it" in what
    assert mqtt_report(load_config(None)) == []
