"""The `pivox` command as a user runs it: real processes, real files, exit codes and output."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from array import array
from pathlib import Path

import pytest

from pivox.cli.main import main
from tests.pulse import PulseAudio

SECRET = "sk-test-0123456789abcdefSECRET"


def pivox(*args: str, env: dict[str, str] | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m pivox ARGS` with no terminal on stdin."""
    return subprocess.run(
        [sys.executable, "-m", "pivox", *args], capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=timeout, env={**os.environ, **(env or {})},
    )


def test_run_with_an_invalid_value_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "pivox.toml"
    config.write_text('[audio]\nring_ms = "abc"\n')
    result = pivox("run", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: audio.ring_ms: expected an integer" in result.stderr


def test_run_with_a_missing_config_names_the_file(tmp_path: Path) -> None:
    result = pivox("run", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert str(tmp_path / "nope.toml") in result.stderr


def test_run_refuses_a_key_file_others_can_read(tmp_path: Path) -> None:
    key = tmp_path / "api_key"
    key.write_text(SECRET)
    key.chmod(0o644)
    result = pivox("run", "--config", "/dev/null", "--set", f"server.api_key_file={key}",
                   env={"OPENAI_API_KEY": "", "CREDENTIALS_DIRECTORY": ""})
    assert result.returncode == 2
    assert "readable by group/others" in result.stderr and str(key) in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_check_reports_the_key_without_printing_it(pulse: PulseAudio) -> None:
    result = pivox("check", "--config", "/dev/null", "--set", "button.enabled=false",
                   "--set", "led.enabled=false", env={"OPENAI_API_KEY": SECRET})
    assert "API key present" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    assert "ok   input device" in result.stdout and "ok   output device" in result.stdout
    assert result.returncode == 0, result.stdout


def test_check_fails_without_a_key_for_a_remote_server(pulse: PulseAudio) -> None:
    result = pivox("check", "--config", "/dev/null",
                   env={"OPENAI_API_KEY": "", "CREDENTIALS_DIRECTORY": ""})
    assert result.returncode == 1
    assert "FAIL API key missing" in result.stdout


def test_check_loads_the_wake_word(pulse: PulseAudio) -> None:
    result = pivox("check", "--config", "/dev/null", "--set", "session.mode=wake_word",
                   "--set", "session.wake_word=hey_jarvis", "--set", "button.enabled=false",
                   "--set", "led.enabled=false", env={"OPENAI_API_KEY": SECRET})
    assert 'ok   wake word hey_jarvis: "Hey Jarvis" (en), cutoff 0.97' in result.stdout
    assert result.returncode == 0, result.stdout


def test_check_and_run_refuse_a_broken_wake_word_model_naming_the_file(
        pulse: PulseAudio, tmp_path: Path) -> None:
    (tmp_path / "kitchen.json").write_text(
        '{"wake_word": "Kitchen", "model": "kitchen.tflite", "micro": '
        '{"probability_cutoff": 0.9, "sliding_window_size": 5}}')
    (tmp_path / "kitchen.tflite").write_bytes(b"TFL3" * 1000)
    args = ("--config", "/dev/null", "--set", "session.mode=wake_word", "--set",
            f'session.wake_word=["okay_nabu", "{tmp_path / "kitchen.json"}"]', "--set",
            "button.enabled=false", "--set", "led.enabled=false")
    check = pivox("check", *args, env={"OPENAI_API_KEY": SECRET})
    assert f"FAIL {tmp_path / 'kitchen.tflite'}: session.wake_word: wake word model is not " \
        "a valid TensorFlow Lite model" in check.stdout
    assert "ok   wake word okay_nabu" in check.stdout and check.returncode == 1
    run = pivox("run", *args, "--set", "server.url=ws://127.0.0.1:9/", timeout=30)
    assert run.returncode == 2
    assert f"config error: {tmp_path / 'kitchen.tflite'}: session.wake_word" in run.stderr


def test_check_names_the_remedy_where_the_wake_word_cannot_run(
        pulse: PulseAudio, tmp_path: Path) -> None:
    """Without the `wake` extra the process cannot import pymicro-features."""
    no_features = ("import sys; sys.modules['pymicro_features'] = None; "
                   "from pivox.cli.main import main; sys.exit(main(sys.argv[1:]))")
    check = subprocess.run(
        [sys.executable, "-c", no_features, "check", "--config", "/dev/null",
         "--set", "session.mode=wake_word", "--set", "button.enabled=false",
         "--set", "led.enabled=false"], capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, env={**os.environ, "OPENAI_API_KEY": SECRET})
    lines = [line for line in check.stdout.splitlines() if "wake word" in line]
    assert len(lines) == 1 and lines[0].startswith("FAIL the local wake word is not installed")
    assert "--extras wake" in lines[0] and "push_to_talk" in lines[0]
    assert check.returncode == 1


def test_devices_marks_the_selected_ones(pulse: PulseAudio,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--set", "audio.output_device=pulse"]) == 0
    out = capsys.readouterr().out
    assert "pulse" in out and "default" in out
    assert "<out" in out and "<in" in out


def test_demo_runs_the_whole_loop_without_a_sound_card(tmp_path: Path) -> None:
    reply = tmp_path / "reply.wav"
    result = pivox("demo", "--output-wav", str(reply), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    leds = [line for line in result.stdout.splitlines() if line.startswith("LED: ")]
    states = [line.split()[1] for line in leds]
    assert "(wake_word mode)" in result.stdout
    # nothing streams until the wake word: idle (local listening) comes before listening
    assert states.index("idle") < states.index("listening")
    for state in ("listening", "user_speaking", "thinking", "speaking"):
        assert state in states
    with wave.open(str(reply)) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (24000, 1)
        samples = array("h", wav.readframes(wav.getnframes()))
    loud = sum(1 for s in samples if abs(s) > 1000)
    assert loud > 24000 * 0.3  # at least 0.3 s of audible reply
    assert "turn 1 done" in result.stderr
    assert "tool get_time({}) -> {\"time\":" in result.stderr  # the tool path, end to end
    assert "assistant: The get_time tool said:" in result.stderr


def test_demo_without_the_wake_word_says_why_it_falls_back(tmp_path: Path) -> None:
    """Where the wake word's libraries are missing (no `wake` extra), one line says so and the
    demo still answers, in always_on mode."""
    reply = tmp_path / "reply.wav"
    code = ("import sys; sys.modules['pymicro_features'] = None; from pivox.cli.main import main; "
            f"raise SystemExit(main(['demo', '--output-wav', {str(reply)!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(always_on mode)" in result.stdout
    [line] = [line for line in result.stderr.splitlines() if "falls back" in line]
    assert "from wake_word to always_on" in line and "--extras wake" in line
    assert "turn 1 done" in result.stderr


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (f'[led]\npatterns = {{ idle = "blink:{"9" * 400}" }}\n', ": led.patterns.idle: "),
        (f"[session]\ntools = {'[' * 2000}{']' * 2000}\n", ": invalid TOML: nested too deep"),
    ],
    ids=["blink-rate-400-digits", "toml-nested-2000"],
)
def test_check_and_run_agree_on_a_hostile_config(tmp_path: Path, text: str, where: str) -> None:
    config = tmp_path / "pivox.toml"
    config.write_text(text)
    for command in ("check", "run"):
        result = pivox(command, "--config", str(config), env={"OPENAI_API_KEY": SECRET})
        assert result.returncode == 2, (command, result.stdout, result.stderr[-2000:])
        assert result.stderr.startswith(f"pivox: config error: {config}{where}"), command
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_check_and_run_refuse_a_cleartext_url_to_another_host(tmp_path: Path) -> None:
    config = tmp_path / "pivox.toml"
    config.write_text('[server]\nurl = "ws://192.0.2.10:8765/v1/realtime"\n')
    for command in ("check", "run"):
        result = pivox(command, "--config", str(config), env={"OPENAI_API_KEY": SECRET})
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert f"{config}: server.url: expected wss://" in result.stderr
        assert SECRET not in result.stdout + result.stderr


def test_check_warns_about_an_allowed_cleartext_url(tmp_path: Path) -> None:
    config = tmp_path / "pivox.toml"
    config.write_text('[server]\nurl = "ws://192.0.2.10:8765/v1/realtime"\n'
                      "allow_insecure = true\n")
    result = pivox("check", "--config", str(config), env={"OPENAI_API_KEY": SECRET})
    assert "WARN server url ws://192.0.2.10:8765/v1/realtime is cleartext" in result.stdout


def test_demo_runs_the_whole_loop_over_gemini(tmp_path: Path) -> None:
    """`server.provider = "gemini"`: the demo runs the bundled Gemini Live server instead."""
    reply = tmp_path / "reply.wav"
    result = pivox("demo", "--set", "server.provider=gemini", "--output-wav", str(reply),
                   timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bundled Gemini Live server" in result.stdout
    states = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("LED: ")]
    assert "listening" in states and "speaking" in states
    with wave.open(str(reply)) as wav:
        samples = array("h", wav.readframes(wav.getnframes()))
    assert sum(1 for s in samples if abs(s) > 1000) > 24000 * 0.3
    assert "turn 1 done" in result.stderr
    assert "assistant: The get_time tool said:" in result.stderr


def test_check_never_prints_a_key_in_the_gemini_url(pulse: PulseAudio) -> None:
    result = pivox("check", "--config", "/dev/null", "--set", "server.provider=gemini",
                   "--set", f"gemini.url=wss://generativelanguage.googleapis.com/ws/x?key={SECRET}",
                   env={"OPENAI_API_KEY": SECRET})
    assert "server url wss://generativelanguage.googleapis.com/ws/x (gemini)" in result.stdout
    assert SECRET not in result.stdout + result.stderr
