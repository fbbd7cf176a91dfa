"""A private mosquitto broker per test: loopback port, no anonymous clients, a password file.

`mosquitto` yields a `Broker` whose `stop()` / `start()` kill and restart the same broker on
the same port (persistence off: a restart forgets retained messages, as a fresh broker does).
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

USER = "pivox"
PASSWORD = "mqtt-secret-7f3a91c2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    """One mosquitto child process on 127.0.0.1:`port`."""

    conf: Path
    port: int
    host: str = "127.0.0.1"
    user: str = USER
    password: str = PASSWORD
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex((self.host, self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def settings(self, *extra: str) -> list[str]:
        """`--set` overrides pointing pivox at this broker (the password comes from env)."""
        return [f"mqtt.host={self.host}", f"mqtt.port={self.port}", f"mqtt.username={self.user}",
                *extra]


def new_broker(tmp_path: Path) -> Broker:
    """A started broker whose files live in `tmp_path` (stop it when done)."""
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), USER, PASSWORD],
                   check=True, capture_output=True)
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    # `user`: as root, mosquitto would become `mosquitto`, who cannot read the test's files
    conf.write_text(f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\n"
                    f"allow_anonymous false\npassword_file {passwords}\npersistence false\n"
                    "log_dest stderr\n")
    broker = Broker(conf, port)
    broker.start()
    return broker


@pytest.fixture
def mosquitto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    if shutil.which("mosquitto") is None:
        pytest.skip("needs mosquitto (apt install mosquitto mosquitto-clients)")
    monkeypatch.setenv("PIVOX_MQTT_PASSWORD", PASSWORD)
    broker = new_broker(tmp_path)
    yield broker
    broker.stop()
