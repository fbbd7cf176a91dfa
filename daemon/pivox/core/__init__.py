"""The pure core: decisions and buffers with no I/O (the caller passes the time and the bytes).

Imports only the standard library, numpy and soxr (arithmetic, not I/O); never asyncio,
websockets, PyAudio, RPi.GPIO or systemd. `lint-imports` holds every module here to that.
"""
