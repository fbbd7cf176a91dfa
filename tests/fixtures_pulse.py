"""The `pulse` fixture: one private PulseAudio (tests/pulse.py) for the whole session.

If `pulseaudio` is missing the tests that use it FAIL (CI installs it); they never skip.
A test on a real PulseAudio (`pulse` or the echo `room`) that fails runs again, at most
REAL_AUDIO_RERUNS times, and the summary counts the reruns (pytest-rerunfailures).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pulse import MicWriter, PulseAudio

REAL_AUDIO_RERUNS = 2
"""On these 2-core machines PulseAudio now and then stalls for a second or more, or its monitor
recording drops a few ms (TESTING.md); the daemon survives that, a test's bounded wait or its
sample-exact recording may not. A failure that repeats on every run is still a failure."""
REAL_AUDIO_FIXTURES = frozenset({"pulse", "room"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that plays or records through a real PulseAudio for reruns."""
    for item in items:
        if REAL_AUDIO_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.flaky(reruns=REAL_AUDIO_RERUNS, reruns_delay=1))


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
