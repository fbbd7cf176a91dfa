"""pivox: a smart-speaker daemon that talks to a realtime speech model over WebSocket."""

__version__ = "0.1.0"
