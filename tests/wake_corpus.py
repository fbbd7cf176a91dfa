"""Generated speech for wake-word tests and benchmarks (espeak-ng, 24 kHz PCM16).

`WAKE_VOICES` are espeak-ng voice/speed pairs measured to be detected as "Okay Nabu" by the
built-in model (bench/wake_accuracy.py measures the whole grid). `other_speech` is speech that
must never wake the device: ordinary sentences and near-misses, in varied voices.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass

import numpy as np
import pytest

from pivox.server.voice import speech

__all__ = [
    "CONFUSABLE",
    "NEAR_MISSES",
    "SENTENCES",
    "VOICES",
    "WAKE_VOICES",
    "Utterance",
    "other_speech",
    "other_speech_parts",
    "say",
    "silence",
    "voiced",
    "wake_then",
]

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"
)

WAKE_VOICES: tuple[tuple[str, int], ...] = (
    ("en-us", 150), ("en-gb", 150), ("en+f3", 150), ("en-us+m3", 175), ("en-gb-x-rp", 175),
)
"""Voice and words per minute that speak "Okay Nabu" so the model hears it (verified)."""

VOICES: tuple[str, ...] = (
    "en-us", "en-gb", "en+f3", "en-us+m3", "en-gb-x-rp", "en+f2", "en-us+m7",
    "en-gb-scotland", "en-029", "en+klatt",
)

NEAR_MISSES: tuple[str, ...] = (
    "okay", "nah boo", "hey", "okay then", "okay Google", "hey Nabil", "nabu", "okay nah",
    "kabuki", "hey Jarvis", "a new book", "oh no", "Naples", "okay, let me know", "I know",
    "no boo", "hey you", "okay, got it", "Nairobi", "bamboo",
)
"""Phrases that share sounds with "Okay Nabu" and must not wake the device."""

CONFUSABLE: tuple[str, ...] = ("okay now", "okay, no", "okay bamboo", "oh Kay, nab you")
"""Measured to wake the built-in model in several espeak-ng voices (bench/wake_accuracy.py):
no probability cutoff separates them from the wake word, so they are not in `other_speech`."""

SENTENCES: tuple[str, ...] = (
    "What is the weather going to be like tomorrow morning?",
    "Please turn off the lights in the kitchen.",
    "I think we should leave a little earlier today.",
    "The train to the airport was twenty minutes late again.",
    "Can you remind me to call my sister at six?",
    "We need milk, eggs, bread and a bag of apples.",
    "That was the best concert I have been to in years.",
    "My laptop battery only lasts about three hours now.",
    "The meeting has been moved to Thursday afternoon.",
    "Did you feed the cat before you went out?",
    "It is going to rain all weekend, so bring an umbrella.",
    "Turn the music down a bit, the baby is asleep.",
    "How long does it take to boil an egg?",
    "I could not find my keys anywhere this morning.",
    "The new bakery on the corner sells excellent bread.",
    "Let us play a game of chess after dinner.",
    "She said the package should arrive on Monday.",
    "Which planet is the largest in the solar system?",
    "There is a strange noise coming from the washing machine.",
    "We watched a documentary about whales last night.",
    "Nobody knows where the old map went.",
    "Can you spell the word necessary for me?",
    "A number of boats were anchored in the bay.",
    "Okay, that sounds good to me, thank you.",
)
"""Ordinary speech, some of it with "okay", "no" and "a" sounds in it."""

SAMPLE_RATE = 24000


def silence(ms: int) -> bytes:
    """`ms` milliseconds of digital silence at 24 kHz."""
    return bytes(2 * SAMPLE_RATE * ms // 1000)


def say(text: str, voice: str = "en-us", words_per_minute: int = 150) -> bytes:
    """`text` spoken by espeak-ng at 24 kHz PCM16 (fails the test when espeak-ng fails)."""
    pcm = speech(text, voice, words_per_minute)
    assert pcm is not None, "espeak-ng failed"
    return pcm


def other_speech(seconds: float, gap_ms: int = 300) -> bytes:
    """At least `seconds` of speech without the wake word: sentences and near-misses in
    turn, cycling through voices and speeds, `gap_ms` of silence between utterances."""
    return other_speech_parts(seconds, gap_ms)[0]


def other_speech_parts(seconds: float, gap_ms: int = 300,
                       ) -> tuple[bytes, list[tuple[int, str, str, int]]]:
    """`other_speech` and what is said where: (byte offset, text, voice, words per minute)."""
    texts = itertools.cycle(itertools.chain.from_iterable(
        zip(SENTENCES, itertools.cycle(NEAR_MISSES), strict=False)))
    voices = itertools.cycle(VOICES)
    speeds = itertools.cycle((130, 150, 175, 160))
    wanted = int(2 * SAMPLE_RATE * seconds)
    parts: list[bytes] = []
    said: list[tuple[int, str, str, int]] = []
    total = 0
    while total < wanted:
        text, voice, wpm = next(texts), next(voices), next(speeds)
        part = say(text, voice, wpm) + silence(gap_ms)
        said.append((total, text, voice, wpm))
        parts.append(part)
        total += len(part)
    return b"".join(parts), said


def voiced(pcm: bytes, threshold: int = 300) -> tuple[int, int]:
    """Byte offsets of the first and just past the last sample louder than `threshold`."""
    loud = np.flatnonzero(np.abs(np.frombuffer(pcm, np.int16)) > threshold)
    assert len(loud), "no voiced sample"
    return 2 * int(loud[0]), 2 * (int(loud[-1]) + 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Utterance:
    """The wake word, a short gap and a command, with where each part lies (byte offsets)."""

    pcm: bytes
    wake_end: int
    command_start: int


def wake_then(command: str, voice: str = "en-us", words_per_minute: int = 150,
              gap_ms: int = 100) -> Utterance:
    """ "Okay Nabu" cut `gap_ms` after its last voiced sample, then `command`, said at once:
    the detector fires after the command has begun (150-250 ms after the wake word ends)."""
    wake = say("Okay Nabu", voice, words_per_minute)
    _, wake_end = voiced(wake)
    head = wake[:wake_end] + silence(gap_ms)
    spoken = say(command, voice, words_per_minute)
    return Utterance(pcm=head + spoken, wake_end=wake_end,
                     command_start=len(head) + voiced(spoken)[0])
