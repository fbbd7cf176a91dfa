"""The network edge: one realtime session over WebSocket, kept open (reconnect, outbox,
resumption), what is refused of a peer, and the API key it carries.
"""
