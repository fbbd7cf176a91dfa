"""The `pulse` fixture: one private PulseAudio (tests/pulse.py) for the whole session.

If `pulseaudio` is missing the tests that use it FAIL (CI installs it); they never skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pulse import MicWriter, PulseAudio


@pytest.fixture(scope="session")
def pulse() -> Iterator[PulseAudio]:
    """A running private PulseAudio with a paced mic writer; this process points at it."""
    with PulseAudio() as server:
        yield server


@pytest.fixture
def live_pulse(pulse: PulseAudio) -> PulseAudio:
    """`pulse`, checked to have a live mic writer (a dead one makes PortAudio spin)."""
    assert pulse.mic is not None and pulse.mic.alive, "the paced mic writer is not running"
    return pulse


@pytest.fixture
def mic(live_pulse: PulseAudio) -> MicWriter:
    """The paced pipe-source writer of the private PulseAudio (the daemon's microphone)."""
    assert live_pulse.mic is not None
    return live_pulse.mic
