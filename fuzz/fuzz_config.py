"""Atheris target: any config file loads or raises a ConfigError naming the file.

Run through fuzz/run.sh.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from pivox.config import load_config
    from pivox.core.errors import ConfigError

PATH = os.path.join(tempfile.mkdtemp(prefix="pivox-fuzz-"), "pivox.toml")


def test_one_input(data: bytes) -> None:
    """Any bytes as the file: a Config or a ConfigError with this path."""
    with open(PATH, "wb") as f:
        f.write(data)
    try:
        load_config(PATH)
    except ConfigError as error:
        assert error.path == PATH, error


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
