"""WakeWordDetector on arrays: generated speech in, detections out (no devices, no clock)."""

from __future__ import annotations

import importlib.abc
import json
import logging
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pivox.audio.wake import (
    MODELS,
    WakeWordDetector,
    WakeWordUnavailable,
    model_json,
    unavailable_reason,
    wake_gate,
)
from pivox.cli.demo import prompt_pcm
from pivox.core.errors import ConfigError
from tests.wake_corpus import WAKE_VOICES, needs_espeak, other_speech, say, silence

FRAME = 960  # 20 ms of 24 kHz PCM16, what the mic delivers


def detections(detector: WakeWordDetector, pcm: bytes, frame: int = FRAME) -> list[int]:
    """Byte offsets (end of the frame) at which `detector` fired."""
    return [i + frame for i in range(0, len(pcm), frame) if detector.process(pcm[i:i + frame])]


@pytest.fixture(scope="module")
def detector() -> WakeWordDetector:
    return WakeWordDetector("okay_nabu")


@needs_espeak
@pytest.mark.parametrize(("voice", "wpm"), WAKE_VOICES)
def test_okay_nabu_is_detected_once_near_its_end(
        detector: WakeWordDetector, voice: str, wpm: int) -> None:
    detector.reset()
    word = say("Okay Nabu", voice, wpm)
    lead = silence(1000)
    hits = detections(detector, lead + word + silence(1500))
    assert len(hits) == 1
    end = len(lead) + len(word)  # espeak-ng's own trailing silence is inside `word`
    assert len(lead) + len(word) // 3 < hits[0] <= end + 48 * 1000


@needs_espeak
@pytest.mark.parametrize(("voice", "wpm"), WAKE_VOICES[:5])
def test_it_stirs_well_before_it_fires_and_never_in_noise(
        detector: WakeWordDetector, voice: str, wpm: int) -> None:
    """While it stirs the capture path hands over each frame: that must begin at least 100 ms
    (5 hops of one frame) before a detection; low noise must never stir it."""
    detector.reset()
    rng = np.random.default_rng(5)
    noise = (rng.standard_normal(24000 * 10) * 30).astype("<i2").tobytes()
    stirred = []
    for i in range(0, len(noise), FRAME):
        detector.process(noise[i:i + FRAME])
        stirred.append(detector.stirring)
    assert not any(stirred)
    pcm = silence(500) + say("Okay Nabu", voice, wpm) + silence(1000)
    first_stir = fired = None
    for k, i in enumerate(range(0, len(pcm), FRAME)):
        hit = detector.process(pcm[i:i + FRAME])
        if detector.stirring and first_stir is None:
            first_stir = k
        if hit:
            fired = k
            break
    assert fired is not None and first_stir is not None and fired - first_stir >= 5
    assert not detector.stirring  # a detection starts over


@needs_espeak
def test_detector_starts_over_after_a_detection(detector: WakeWordDetector) -> None:
    detector.reset()
    utterance = silence(500) + say("Okay Nabu") + silence(500)
    assert len(detections(detector, utterance * 3)) == 3


@needs_espeak
def test_frames_of_any_whole_number_of_samples(detector: WakeWordDetector) -> None:
    detector.reset()
    pcm = silence(500) + say("Okay Nabu") + silence(1000)
    assert len(detections(detector, pcm, frame=2 * 7)) == 1
    assert len(detections(detector, pcm, frame=2 * 4800)) == 1


@needs_espeak
def test_reset_forgets_what_was_heard(detector: WakeWordDetector) -> None:
    word = say("Okay Nabu")
    detector.reset()
    head = word[: len(word) // 2 // FRAME * FRAME]
    detections(detector, silence(500) + head)
    detector.reset()
    assert detections(detector, word[len(head):] + silence(1000)) == []


@needs_espeak
def test_ten_minutes_of_other_speech_never_wake_it(detector: WakeWordDetector) -> None:
    """Sentences and near-misses ("okay", "nah boo", "hey", ...) in ten voices, processed
    faster than real time in one stream, as the mic would deliver them."""
    detector.reset()
    pcm = other_speech(600)
    assert len(pcm) >= 600 * 48000
    assert detections(detector, pcm) == []


@needs_espeak
def test_the_demo_question_starts_with_a_detected_wake_word(detector: WakeWordDetector) -> None:
    detector.reset()
    assert len(detections(detector, prompt_pcm("What time is it?", wake_word=True))) == 1
    assert detections(detector, prompt_pcm("What time is it?", wake_word=False)) == []


@pytest.mark.parametrize("model", MODELS)
def test_every_shipped_model_loads_and_stays_quiet_on_silence(model: str) -> None:
    assert detections(WakeWordDetector(model), silence(3000)) == []


@needs_espeak
def test_a_higher_cutoff_keeps_the_wake_word_and_drops_near_misses() -> None:
    """Near-misses measured to fire at the model's own cutoff (0.85) and not at 0.93, each
    heard from a fresh start (as bench/wake_accuracy.py measures them)."""

    def fires(detector: WakeWordDetector, pcm: bytes) -> int:
        detector.reset()
        return len(detections(detector, pcm))

    near_misses = [silence(500) + say(text, voice, wpm) + silence(1000) for text, voice, wpm in (
        ("hey Nabil", "en-gb", 150), ("okay Google", "en-us+m3", 175),
        ("okay then", "en-us+m3", 175))]
    word = silence(500) + say("Okay Nabu") + silence(1000)
    default = WakeWordDetector("okay_nabu")
    assert default.cutoff == pytest.approx(0.85)
    assert [fires(default, pcm) for pcm in near_misses] == [1, 1, 1]
    strict = WakeWordDetector("okay_nabu", cutoff=0.93)
    assert strict.cutoff == 0.93
    assert [fires(strict, pcm) for pcm in near_misses] == [0, 0, 0]
    assert fires(strict, word) == 1
    with pytest.raises(ValueError, match="cutoff"):
        WakeWordDetector("okay_nabu", cutoff=1.0)


def test_unknown_model_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="okay_nabu, alexa, hey_jarvis, hey_mycroft or the path"):
        WakeWordDetector("hey_computer")


def test_missing_library_names_the_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the `wake` extra: pymicro-features cannot be imported."""
    assert unavailable_reason() is None
    monkeypatch.setitem(sys.modules, "pymicro_features", None)  # import raises ImportError
    reason = unavailable_reason()
    assert reason is not None
    assert "--extras wake" in reason and "pivox[wake]" in reason and "push_to_talk" in reason
    with pytest.raises(WakeWordUnavailable, match="not installed"):
        WakeWordDetector()


class _ForeignLibrary(importlib.abc.MetaPathFinder):
    """Makes `import pymicro_features` fail as a library built for another CPU does."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "pymicro_features":
            raise OSError("wrong ELF class: ELFCLASS32")


def test_a_library_for_another_cpu_names_the_userland(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reason names the userland by the interpreter's pointer size, not only the kernel."""
    monkeypatch.delitem(sys.modules, "pymicro_features")
    monkeypatch.setattr(sys, "meta_path", [_ForeignLibrary(), *sys.meta_path])
    reason = unavailable_reason()
    assert reason is not None
    assert f"{struct.calcsize('P') * 8}-bit userland" in reason and "ELFCLASS32" in reason
    assert "64-bit Raspberry Pi OS" in reason and "push_to_talk" in reason


def test_the_gate_exists_only_in_wake_word_mode() -> None:
    assert wake_gate("always_on", "okay_nabu") is None
    assert wake_gate("push_to_talk", "okay_nabu") is None
    assert isinstance(wake_gate("wake_word", "alexa"), WakeWordDetector)


def test_where_the_detector_cannot_run_the_log_says_so_in_one_line(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "pymicro_features", None)
    with caplog.at_level(logging.INFO, logger="pivox.wake"):
        assert wake_gate("wake_word", "okay_nabu") is None
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "--extras wake" in record.getMessage()
    assert "push_to_talk" in record.getMessage()


# ------------------------------------------------------------------ chosen wake words


def custom_model(directory: Path, name: str = "kitchen", source: str = "alexa") -> Path:
    """A model by path: a built-in model's files copied under another name."""
    builtin = model_json(source)
    doc = json.loads(builtin.read_text())
    doc["model"] = f"{name}.tflite"
    shutil.copy(builtin.with_suffix(".tflite"), directory / f"{name}.tflite")
    path = directory / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


@needs_espeak
def test_two_wake_words_listen_at_once_and_the_log_says_which_fired(
        caplog: pytest.LogCaptureFixture) -> None:
    both = WakeWordDetector(["okay_nabu", "hey_mycroft"])
    with caplog.at_level(logging.INFO, "pivox.wake"):
        for text, name in (("Okay Nabu", "okay_nabu"), ("Hey Mycroft", "hey_mycroft")):
            assert len(detections(both, silence(500) + say(text) + silence(1000))) == 1
            assert both.fired == name
    assert [r.WAKE_WORD for r in caplog.records] == ["okay_nabu", "hey_mycroft"]  # type: ignore[attr-defined]


@needs_espeak
def test_a_custom_model_loaded_by_path_is_detected(tmp_path: Path) -> None:
    path = custom_model(tmp_path)
    detector = WakeWordDetector(["okay_nabu", str(path)])
    assert [m.name for m in detector.models] == ["okay_nabu", "kitchen"]
    assert detector.models[1].phrase == "Alexa"
    assert len(detections(detector, silence(500) + say("Alexa") + silence(1000))) == 1
    assert detector.fired == "kitchen"


@pytest.mark.parametrize(("damage", "named", "why"), [
    (lambda d: (d / "kitchen.tflite").write_bytes(b"\0" * 4000), "kitchen.tflite",
     "not a valid tensorflow lite model"),
    (lambda d: (d / "kitchen.tflite").write_bytes(
        (d / "kitchen.tflite").read_bytes()[:20000]), "kitchen.tflite", "not a valid"),
    (lambda d: (d / "kitchen.tflite").unlink(), "kitchen.tflite", "file missing"),
    (lambda d: (d / "kitchen.json").write_text("{"), "kitchen.json", "not a microwakeword"),
    (lambda d: (d / "kitchen.json").unlink(), "kitchen.json", "no such file"),
    (lambda d: (d / "kitchen.json").write_text('{"model": "../x.tflite"}'), "kitchen.json",
     "not a microwakeword"),
    (lambda d: (d / "kitchen.json").write_bytes(b"\xff" * 10), "kitchen.json", "not a micro"),
])
def test_a_broken_model_file_is_a_config_error_naming_the_file(
        tmp_path: Path, damage: Any, named: str, why: str) -> None:
    path = custom_model(tmp_path)
    damage(tmp_path)
    with pytest.raises(ConfigError) as info:
        WakeWordDetector(["okay_nabu", str(path)])
    assert info.value.path == str(tmp_path / named) and info.value.key == "session.wake_word"
    assert why in str(info.value).lower()


@needs_espeak
@pytest.mark.parametrize("cutoff", [0.0, 0.5])
def test_verdicts_are_the_librarys_own_row_for_row(cutoff: float) -> None:
    """The detector's lean inference path says what pymicro-wakeword's own streaming calls
    say on every feature row (wake words in every voice, near-misses; a low cutoff that fires
    more). The rows are made once: the features frontend itself is not bit-reproducible."""
    import numpy as np
    import soxr
    from micro_features_cpp import create_frontend, process_samples
    from pymicro_wakeword import MicroWakeWord, Model

    from pivox.audio.wake import CHUNK_BYTES, _Streaming

    pcm = b"".join(silence(500) + say("Okay Nabu", voice, wpm) for voice, wpm in WAKE_VOICES)
    pcm16k = soxr.resample(np.frombuffer(pcm + other_speech(60), np.int16), 24000, 16000)
    audio = pcm16k.astype(np.int16).tobytes()
    frontend, rows, at = create_frontend(), [], 0
    while at + CHUNK_BYTES <= len(audio):
        row, read = process_samples(frontend, audio[at:at + CHUNK_BYTES])
        at += read * 2
        if row:
            rows.append(row)
    library, model = (MicroWakeWord.from_builtin(Model("okay_nabu")) for _ in range(2))
    for detector in (library, model):
        detector.probability_cutoff = cutoff or detector.probability_cutoff
    ours = _Streaming(model)
    ours.restart()
    theirs = [bool(library.process_streaming(np.array(row).reshape(1, 1, -1))) for row in rows]
    assert [ours.features(row) for row in rows] == theirs
    assert sum(theirs) >= 20
