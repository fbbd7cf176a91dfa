"""Wiring: the composition's parts below `daemon.py`, each joining edges on the daemon's
behalf through a narrow protocol the daemon implements (`doors`: the control socket, MQTT and
announcements)."""
