"""The status line systemd shows for each device state."""

from __future__ import annotations

import pytest

from pivox.core.machine import State
from pivox.core.status import status_line


@pytest.mark.parametrize(("state", "line"), [
    (State.BOOTING, "booting, server example.test"),
    (State.CONNECTING, "connecting, server example.test"),
    (State.OFFLINE, "offline, server example.test"),
    (State.IDLE, "idle, connected to example.test"),
    (State.USER_SPEAKING, "user speaking, connected to example.test"),
    (State.AUTH_ERROR, "auth error: check the API key"),
    (State.AUDIO_ERROR, "audio error: mic: stream stalled"),
])
def test_each_state_has_its_line(state: State, line: str) -> None:
    assert status_line(state, "example.test", "mic: stream stalled") == line
