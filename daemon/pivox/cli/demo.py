"""`pivox demo`: the whole loop on any Linux box, against the bundled server, no Pi, no key.

With a sound card (and a terminal) the simulated button is the Enter key: press Enter to
start talking, Enter again to stop. Without one, a generated spoken question is the
microphone, in wake_word mode: "Okay Nabu, what time is it?" in an espeak-ng voice the
detector is verified to hear (tests/test_wake.py); with `--input-wav`, or where the detector
cannot run (one log line says why), the file is streamed in always_on mode. The replies go
to `--output-wav`; the demo ends after the first reply has played.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
import tempfile
from pathlib import Path

from pivox.audio.filedevices import FileMicrophone, write_wav
from pivox.audio.soundcard import list_devices, select_device
from pivox.audio.wake import unavailable_reason
from pivox.cli.hardware import file_audio, open_pyaudio_microphone, open_pyaudio_speaker
from pivox.config import Config, load_config
from pivox.core.errors import DeviceError
from pivox.core.machine import State
from pivox.daemon import Daemon, Hardware
from pivox.host.logsetup import setup_logging
from pivox.host.simgpio import SimButton, SimLed
from pivox.server import GeminiServer, RealtimeServer, ServerOptions
from pivox.server.voice import speech, tones

log = logging.getLogger("pivox.demo")

DEMO_TIMEOUT_S = 90.0
WAKE_WORD = "Okay Nabu"
DEMO_VOICE = ("en-us", 150)
"""espeak-ng voice and words per minute of the generated question (detected: tests/test_wake.py)."""


def has_sound_card() -> bool:
    """True when PortAudio has a default input and a default output device."""
    try:
        devices = list_devices()
        select_device(devices, "", "input")
        select_device(devices, "", "output")
    except DeviceError:
        return False
    return True


def prompt_pcm(question: str, wake_word: bool) -> bytes:
    """Half a second of silence, the question spoken (after the wake word if asked; tones
    without espeak-ng), silence."""
    silence = bytes(24_000)
    text = f"{WAKE_WORD}, {question}" if wake_word else question
    voice = speech(text, *DEMO_VOICE) or tones(1500)
    return silence + voice + silence * 3


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    config = load_config(args.config, args.overrides)
    setup_logging(config.log.level, "off")
    logging.getLogger("websockets").setLevel(logging.WARNING)  # the server's per-link lines
    card = args.sound_card or (args.input_wav is None and sys.stdin.isatty() and has_sound_card())
    return asyncio.run(_demo(args, config, card))


async def _demo(args: argparse.Namespace, config: Config, card: bool) -> int:
    options = ServerOptions(port=0, tool_call="get_time" if "get_time" in
                            config.session.tools else None)
    gemini = config.server.provider == "gemini"
    async with GeminiServer(options) if gemini else RealtimeServer(options) as server:
        if gemini:
            config = dataclasses.replace(
                config, gemini=dataclasses.replace(config.gemini, url=server.url))
        else:
            config = dataclasses.replace(
                config, server=dataclasses.replace(config.server, url=server.url, model=""))
        print(f"pivox demo: bundled {'Gemini Live' if gemini else 'OpenAI Realtime'} server "
              f"at {server.url}")
        if card:
            return await _with_sound_card(config)
        return await _with_files(args, config)


def _sim_led(config: Config) -> SimLed:
    return SimLed(print)


async def _with_sound_card(config: Config) -> int:
    config = dataclasses.replace(
        config, session=dataclasses.replace(config.session, mode="push_to_talk"))
    print("press Enter to start talking, Enter again to stop; Ctrl-C ends the demo")
    hardware = Hardware(
        open_microphone=open_pyaudio_microphone,
        open_speaker=open_pyaudio_speaker,
        open_button=lambda cfg, on_edge: SimButton(on_edge, keyboard=True),
        open_led=_sim_led,
    )
    return await Daemon(config, hardware).run()


async def _with_files(args: argparse.Namespace, config: Config) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="pivox-demo-"))
    input_wav = Path(args.input_wav) if args.input_wav else workdir / "question.wav"
    reason = None if args.input_wav else unavailable_reason()
    wake = not args.input_wav and reason is None
    if reason is not None:
        log.warning("the demo falls back from wake_word to always_on: %s", reason,
                    extra={"PIVOX_EVENT": "wake_word_fallback"})
    if not args.input_wav:
        write_wav(input_wav, prompt_pcm(args.question, wake))
    output_wav = Path(args.output_wav or "pivox-demo-reply.wav")
    mode = "wake_word" if wake else "always_on"
    config = dataclasses.replace(
        config, session=dataclasses.replace(config.session, mode=mode, wake_word=("okay_nabu",)))
    open_mic, open_speaker = file_audio(input_wav, output_wav)
    mics: list[FileMicrophone] = []

    def open_microphone(cfg: Config, on_frame: object) -> FileMicrophone:
        mic = open_mic(cfg, on_frame)  # type: ignore[arg-type]
        mics.append(mic)
        return mic

    hardware = Hardware(open_microphone=open_microphone, open_speaker=open_speaker,
                        open_button=None, open_led=_sim_led)
    daemon = Daemon(config, hardware)
    print(f"no sound card in use: the microphone plays {input_wav} ({mode} mode)")
    runner = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(DEMO_TIMEOUT_S):
            while not (mics and mics[-1].finished.is_set() and daemon.stats["turns"] > 0
                       and daemon.machine.state is State.LISTENING):
                await asyncio.sleep(0.1)
    except TimeoutError:
        print(f"pivox demo: no reply within {DEMO_TIMEOUT_S:.0f} s", file=sys.stderr)
        daemon.stop()
        await runner
        return 1
    daemon.stop()
    await runner
    print(f"pivox demo: the reply is in {output_wav}")
    return 0
