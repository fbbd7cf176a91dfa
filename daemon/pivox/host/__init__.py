"""The host: what the process gets from the machine — systemd notify, the journal, logging
that is safe to write, memory settings, optional libraries, and the GPIO button and LED.
"""
