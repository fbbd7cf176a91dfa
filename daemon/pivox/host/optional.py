"""Optional libraries: import one, or fail with one line naming it and how to install it.

Every optional piece (PyAudio, systemd-python, RPi.GPIO / rpi-lgpio, the DSP and
wake-word libraries) is imported through `require`, lazily, inside the adapter that uses
it, so pivox imports on any machine and a missing piece is a `MissingDependency`, never a
bare ModuleNotFoundError traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from pivox.core.errors import PivoxError


class MissingDependency(PivoxError):
    """An optional library is not installed; the message names it and the install command."""

    def __init__(self, package: str, install: str) -> None:
        self.package = package
        self.install = install
        self.message = f"{package} is not installed: {install}"
        super().__init__(self.message)


def require(module: str, package: str, extra: str, *, apt: str | None = None) -> ModuleType:
    """Import `module`, or raise MissingDependency naming `package` and how to install it.

    `extra` is the pivox extra that pulls the package in (`pip install 'pivox[extra]'`),
    `apt` the Debian package that provides it prebuilt, if any. Other import failures
    (a module that raises RuntimeError off a Pi, say) propagate unchanged.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        install = f"pip install {package} (the pivox[{extra}] extra)"
        if apt:
            install += f", or apt install {apt}"
        if exc.name not in (None, module, module.partition(".")[0]):
            install += f" ({exc})"  # the module is there but something it loads is not
        raise MissingDependency(package, install) from None
