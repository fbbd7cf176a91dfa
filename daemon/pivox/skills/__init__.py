"""Skills: the tools the model may call, each with one schema, one validator and one handler.

A skill changes the device only through a narrow protocol the daemon implements (`ToolHost`).
"""
