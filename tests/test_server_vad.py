"""The energy VAD of the local server: edges and their times on generated speech."""

from __future__ import annotations

import pytest

from pivox.server.vad import EnergyVad, SpeechStart, SpeechStop, frame_rms, rms_threshold
from tests.fixtures_server import pcm_silence, pcm_tone


def feed_in_chunks(vad: EnergyVad, pcm: bytes, chunk_bytes: int) -> list[object]:
    edges: list[object] = []
    for offset in range(0, len(pcm), chunk_bytes):
        edges += vad.feed(pcm[offset : offset + chunk_bytes])
    return edges


@pytest.mark.parametrize("chunk_bytes", [960, 1440, 4800, 77])
def test_edges_carry_padding_and_silence(chunk_bytes: int) -> None:
    vad = EnergyVad(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
    pcm = pcm_silence(1000) + pcm_tone(800) + pcm_silence(1000) + pcm_tone(400) + pcm_silence(600)
    assert feed_in_chunks(vad, pcm, chunk_bytes) == [
        SpeechStart(audio_start_ms=700),
        SpeechStop(audio_end_ms=2300),
        SpeechStart(audio_start_ms=2500),
        SpeechStop(audio_end_ms=3700),
    ]


def test_padding_never_reaches_before_the_last_stop_or_start() -> None:
    vad = EnergyVad(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=200)
    edges = vad.feed(pcm_tone(100) + pcm_silence(300) + pcm_tone(100) + pcm_silence(200))
    assert edges == [
        SpeechStart(audio_start_ms=0),
        SpeechStop(audio_end_ms=300),
        SpeechStart(audio_start_ms=300),
        SpeechStop(audio_end_ms=700),
    ]


def test_short_pauses_do_not_end_speech() -> None:
    vad = EnergyVad(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=500)
    edges = vad.feed(pcm_tone(200) + pcm_silence(480) + pcm_tone(200) + pcm_silence(500))
    assert edges == [SpeechStart(audio_start_ms=0), SpeechStop(audio_end_ms=1380)]


def test_threshold_decides_what_is_speech() -> None:
    quiet = pcm_tone(200, amplitude=300)  # RMS 212, about -44 dBFS
    assert rms_threshold(0.2) < frame_rms(quiet[:960]) < rms_threshold(0.5)
    assert EnergyVad(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=100).feed(quiet) == []
    low = EnergyVad(threshold=0.2, prefix_padding_ms=0, silence_duration_ms=100)
    assert low.feed(quiet + pcm_silence(100)) == [
        SpeechStart(audio_start_ms=0),
        SpeechStop(audio_end_ms=300),
    ]


def test_restart_keeps_session_time_and_drops_speech() -> None:
    vad = EnergyVad(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=200)
    assert vad.feed(pcm_silence(500) + pcm_tone(210)) == [SpeechStart(audio_start_ms=200)]
    vad.restart()  # a manual commit: the partial 10 ms counts, speech is forgotten
    assert vad.position_ms == 710
    assert vad.feed(pcm_silence(300)) == []
    assert vad.feed(pcm_tone(100)) == [SpeechStart(audio_start_ms=710)]


def test_consumed_offsets_times() -> None:
    vad = EnergyVad(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=100, consumed=48000)
    assert vad.feed(pcm_tone(100) + pcm_silence(100)) == [
        SpeechStart(audio_start_ms=1000),
        SpeechStop(audio_end_ms=1200),
    ]
