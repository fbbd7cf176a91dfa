"""Factories that open the real or simulated edges the daemon runs on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from pivox.audio.filedevices import FileMicrophone, FileSpeaker
from pivox.audio.soundcard import Microphone, Speaker
from pivox.config import Config
from pivox.core.farend import FarEnd
from pivox.core.ring import AudioRing
from pivox.daemon import Hardware
from pivox.host.gpio import Button, Led

log = logging.getLogger("pivox.hardware")

EdgeCallback = Callable[[bool, float], None]


def on_loop(callback: EdgeCallback) -> EdgeCallback:
    """Wrap a loop-side callback so a foreign thread (RPi.GPIO's) can call it."""
    loop = asyncio.get_running_loop()

    def threadsafe(pressed: bool, at: float) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(callback, pressed, at)

    return threadsafe


def open_pyaudio_microphone(config: Config, on_frame: Callable[[bytes], None]) -> Microphone:
    """The configured PyAudio microphone."""
    a = config.audio
    return Microphone(a.input_device, frame_ms=a.frame_ms, on_frame=on_frame,
                      latency_ms=a.latency_ms)


def open_pyaudio_speaker(config: Config, ring: AudioRing, far_end: FarEnd | None = None,
                         ) -> Speaker:
    """The configured PyAudio speaker; it records what it plays into `far_end`."""
    a = config.audio
    return Speaker(ring, a.output_device, latency_ms=a.latency_ms, volume=a.volume,
                   far_end=far_end)


def gpio_button(gpio_module: ModuleType | None = None) -> Callable[[Config, EdgeCallback], Any]:
    """A factory for the button on the `RPi.GPIO` API (the real module unless given one)."""

    def open_button(config: Config, on_edge: EdgeCallback) -> Button:
        b = config.button
        return Button(b.pin, pull=b.pull, active_low=b.active_low, bouncetime_ms=b.debounce_ms,
                      on_edge=on_loop(on_edge), gpio_module=gpio_module)

    return open_button


def gpio_led(gpio_module: ModuleType | None = None) -> Callable[[Config], Led]:
    """A factory for the status LED on the `RPi.GPIO` API."""

    def open_led(config: Config) -> Led:
        led = config.led
        pins: int | tuple[int, ...] = led.rgb_pins or led.pin
        return Led(pins, pwm_hz=led.pwm_hz, gpio_module=gpio_module)

    return open_led


def pi_hardware(gpio_module: ModuleType | None = None) -> Hardware:
    """PyAudio sound devices and GPIO button and LED: what `pivox run` uses."""
    return Hardware(
        open_microphone=open_pyaudio_microphone,
        open_speaker=open_pyaudio_speaker,
        open_button=gpio_button(gpio_module),
        open_led=gpio_led(gpio_module),
    )


def file_audio(input_wav: Path, output_wav: Path) -> tuple[
    Callable[[Config, Callable[[bytes], None]], FileMicrophone],
    Callable[[Config, AudioRing, FarEnd], FileSpeaker],
]:
    """Factories for a WAV-file microphone and speaker (no sound card needed)."""

    def open_mic(config: Config, on_frame: Callable[[bytes], None]) -> FileMicrophone:
        return FileMicrophone(input_wav, on_frame=on_frame, frame_ms=config.audio.frame_ms)

    def open_speaker(config: Config, ring: AudioRing, far_end: FarEnd) -> FileSpeaker:
        return FileSpeaker(ring, output_wav, frame_ms=config.audio.frame_ms, far_end=far_end)

    return open_mic, open_speaker
