"""Outside control: the command model shared by the control socket and MQTT, and both doors.

An edge: imports core, protocol, config and host, never another edge. The daemon implements
`ControlHost` (commands.py) for it, as it implements `ToolHost` for the skills.
"""
