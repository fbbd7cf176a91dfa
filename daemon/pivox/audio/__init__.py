"""The sound edge: PortAudio devices, the capture path (echo canceller, wake word, pre-roll)
and the playback path (ring, backlog) the daemon wires between the mic, the link and the speaker.
"""
