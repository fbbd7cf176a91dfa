"""Wiring: the composition's parts below `daemon.py`, each joining edges on the daemon's
behalf through `parts.DaemonParts`, a protocol the daemon implements (`doors`: the control
socket, MQTT and announcements; `tools`: the model's tool calls; `alarms`: the timers' ringing;
`endings`: how a reply ends, drained, timed out or interrupted)."""
