"""The one-line status systemd shows (`STATUS=`): the device state and the server it talks to."""

from __future__ import annotations

from pivox.core.machine import State

_UNLINKED = (State.OFFLINE, State.CONNECTING, State.BOOTING)


def status_line(state: State, host: str, audio_error: str | None) -> str:
    """`state, connected to host` (or `server host` while not linked); errors say what to do."""
    if state is State.AUTH_ERROR:
        return "auth error: check the API key"
    if state is State.AUDIO_ERROR:
        return f"audio error: {audio_error}"
    name = state.value.replace("_", " ")
    return f"{name}, server {host}" if state in _UNLINKED else f"{name}, connected to {host}"
