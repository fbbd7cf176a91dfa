"""`pivox run` whose speaker wedges once the file `$PIVOX_TEST_WEDGE` exists (tests/test_hangs.py).

The real command line (`pivox.cli.main`), the real PyAudio speaker on PulseAudio, with one
change: the speaker is a `WedgedSpeaker` that never comes back once wedged. Run it as
`python -m tests.wedged_run run --config FILE`.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from pivox import cli
from pivox.cli import hardware
from tests.daemon_harness import WedgedSpeaker


class FileFlag:
    """Set while a file exists."""

    def __init__(self, path: str) -> None:
        self.path = path

    def is_set(self) -> bool:
        return os.path.exists(self.path)


def main() -> int:
    wedge, never = FileFlag(os.environ["PIVOX_TEST_WEDGE"]), threading.Event()

    def open_speaker(config: Any, ring: Any, far_end: Any = None) -> WedgedSpeaker:
        a = config.audio
        return WedgedSpeaker(ring, wedge, never, device=a.output_device, latency_ms=a.latency_ms,
                             far_end=far_end)

    hardware.open_pyaudio_speaker = open_speaker  # pi_hardware() reads it when called
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
