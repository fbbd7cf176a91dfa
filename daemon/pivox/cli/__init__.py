"""The commands: `pivox run`, `demo`, `serve`, `check`, `devices`. Nothing imports this package."""

from pivox.cli.main import main

__all__ = ["main"]
