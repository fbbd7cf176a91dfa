"""install.sh on a Raspberry Pi's architectures: Debian bookworm roots under qemu-user.

For arm64, armhf, and armhf under a faked 64-bit kernel (a 32-bit Raspberry Pi OS on a
Pi 4/5: `uname -m` first on the installer's PATH and Python's platform.machine() both say
aarch64), install.sh runs from a copy of the checkout in a chroot, as a new user would,
reaching PyPI and Debian (no piwheels); then `pivox check` and `pivox demo`. pip's report
(PIP_REPORT) of pivox's install says what came as a wheel and what as an sdist; the wheel
tags in the venv say what was built here.

The faked case reuses the armhf root after `install.sh --uninstall` (apt's packages stay;
pip's cache holds the wheels built before), so it costs a few minutes, not a second build.
Needs root, debootstrap, chroot and qemu-user-static with binfmt_misc. Timings go to
$PIVOX_CACHE/last-emulated-run.json (cold and warm: README, "What each architecture gets").
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.system import emulated, nspawn

pytestmark = [
    pytest.mark.system,
    pytest.mark.timeout(nspawn.SYSTEM_TEST_TIMEOUT_S),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for debootstrap and chroot"),
    pytest.mark.skipif(not shutil.which("debootstrap"), reason="needs debootstrap"),
]

INSTALL_TIMEOUT_S = 2400
DEMO_TIMEOUT_S = 600
REPORT = "/root/pip-report.json"
VENV_PYTHON = "/opt/pivox/venv/bin/python"
FAKE_KERNEL = {
    # first on the installer's PATH: the machine field says aarch64, as on a Pi 4/5
    "/usr/local/fake64/uname": "#!/bin/sh\n/bin/uname \"$@\" | sed 's/armv7l/aarch64/g'\n",
    # every Python (pip, its build environments, pivox) sees aarch64 in platform.machine()
    # (Debian's /usr/lib/python3.11/sitecustomize.py is a link to this file)
    "/etc/python3.11/sitecustomize.py":
        "import platform\nplatform.machine = lambda: 'aarch64'\n",
}
FACTS = """
import json, platform, struct, sys
facts = {"machine": platform.machine(), "bits": struct.calcsize("P") * 8}
import numpy, soxr
facts["numpy"] = numpy.__file__
facts["soxr"] = soxr.__version__
from pivox.audio.wake import unavailable_reason
facts["wake"] = unavailable_reason()
from pivox.audio.aec import load_webrtc
from pivox.host.optional import MissingDependency
try:
    load_webrtc()
    facts["aec"] = None
except MissingDependency as exc:
    facts["aec"] = str(exc)
import importlib.metadata as md, re
facts["built_here"] = sorted(  # wheels tagged plain linux_*: built on this machine from source
    re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in md.distributions()
    if str(d.locate_file("")).startswith("/opt/pivox/venv/")
    and "-linux_" in (d.read_text("WHEEL") or ""))
print(json.dumps(facts))
"""


@dataclass
class Install:
    arch: str
    install: emulated.Result
    report: dict[str, Any]
    facts: dict[str, Any]
    check: emulated.Result
    demo: emulated.Result
    uname: str
    seconds: dict[str, float]

    def built_from_source(self) -> set[str]:
        """Packages pip's last run (pivox and its extras) took as an sdist (pivox itself, a
        local tree, not counted)."""
        built = set()
        for item in self.report.get("install", []):
            info = item.get("download_info", {})
            if "dir_info" not in info and not info.get("url", "").endswith(".whl"):
                built.add(item["metadata"]["name"].lower())
        return built

    def wheels(self) -> set[str]:
        return {item["metadata"]["name"].lower() for item in self.report.get("install", [])
                if item.get("download_info", {}).get("url", "").endswith(".whl")}


@contextlib.contextmanager
def _root(arch: str, tmp: Path) -> Iterator[emulated.Root]:
    if not emulated.binfmt_ready(arch):
        pytest.skip(f"no binfmt_misc entry for {arch} (apt install qemu-user-static)")
    began = time.monotonic()
    emulated.build_roots(tuple(emulated.QEMU))
    with emulated.root(arch, tmp) as root:
        _record(arch, {"root": time.monotonic() - began})
        yield root


def _install(root: emulated.Root, name: str, fake_64bit_kernel: bool = False) -> Install:
    """install.sh, then the facts, `pivox check` and `pivox demo`; timings recorded."""
    seconds: dict[str, float] = {}
    began = time.monotonic()
    env = {"PIP_REPORT": REPORT}
    if fake_64bit_kernel:
        for path, text in FAKE_KERNEL.items():
            target = emulated.inside(root.path, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            target.chmod(0o755)
        env["PATH"] = f"/usr/local/fake64:{emulated.PATH}"
    uname = root.run("uname -m", 60, env).out.strip()
    install = root.run(f"cd {emulated.CHECKOUT} && ./install.sh", INSTALL_TIMEOUT_S, env)
    seconds["install"] = time.monotonic() - began
    report_file = root.path / REPORT.lstrip("/")
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    facts_run = root.run(f"{VENV_PYTHON} -c '{FACTS}'", 300)
    facts = json.loads(facts_run.out.splitlines()[-1]) if facts_run.rc == 0 else {
        "error": facts_run.out}
    step = time.monotonic()
    check = root.run("OPENAI_API_KEY=sk-emulated /opt/pivox/venv/bin/pivox check "
                     "--config /etc/pivox/pivox.toml", 300)
    seconds["check"] = time.monotonic() - step
    step = time.monotonic()
    # AEC3 takes ~9 ms of every 20 ms frame under qemu (native on a Pi: see README), and
    # the bundled server shares the process: the demo runs without it here
    demo = root.run("cd /tmp && /opt/pivox/venv/bin/pivox demo --output-wav /tmp/reply.wav "
                    "--set audio.echo_cancellation=false", DEMO_TIMEOUT_S)
    seconds["demo"] = time.monotonic() - step
    _record(name, seconds)
    return Install(root.arch, install, report, facts, check, demo, uname, seconds)


def _record(name: str, seconds: dict[str, float]) -> None:
    """Add `seconds` to $PIVOX_CACHE/last-emulated-run.json under `name`."""
    timings = nspawn.cache_dir() / "last-emulated-run.json"
    recorded = json.loads(timings.read_text()) if timings.exists() else {}
    recorded.setdefault(name, {}).update({k: round(v, 1) for k, v in seconds.items()})
    timings.write_text(json.dumps(recorded, indent=1))


@pytest.fixture(scope="module")
def arm64(tmp_path_factory: pytest.TempPathFactory) -> Install:
    """arm64's root is gone once installed and run (one root at a time: emulated.root)."""
    with _root("arm64", tmp_path_factory.mktemp("arm64")) as root:
        return _install(root, "arm64")


@pytest.fixture(scope="module")
def armhf_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulated.Root]:
    with _root("armhf", tmp_path_factory.mktemp("armhf")) as root:
        yield root


@pytest.fixture(scope="module")
def armhf(armhf_root: emulated.Root) -> Install:
    return _install(armhf_root, "armhf")


@pytest.fixture(scope="module")
def armhf_fake64(armhf_root: emulated.Root, armhf: Install) -> Install:
    """The same root after `install.sh --uninstall` (apt's packages stay, pip's cache holds
    the two wheels built before), installed again under the faked 64-bit kernel."""
    uninstall = armhf_root.run(f"cd {emulated.CHECKOUT} && ./install.sh --uninstall", 300)
    assert uninstall.rc == 0, uninstall.out
    return _install(armhf_root, "armhf-fake64", fake_64bit_kernel=True)


def _installed(run: Install) -> None:
    assert run.install.rc == 0, run.install.out[-4000:]
    assert "pivox install: done" in run.install.out
    assert run.report, "pip wrote no report"
    assert "error" not in run.facts, run.facts


def test_arm64_installs_from_wheels_and_hears_the_wake_word(arm64: Install) -> None:
    _installed(arm64)
    assert "userland arm64: extras [wake,aec]" in arm64.install.out
    assert arm64.built_from_source() == set(), arm64.built_from_source()
    assert arm64.facts["built_here"] == []
    assert {"numpy", "soxr", "pymicro-features", "pywebrtc-audio"} <= arm64.wheels()
    assert (arm64.facts["machine"], arm64.facts["bits"]) == ("aarch64", 64)
    assert arm64.facts["wake"] is None and arm64.facts["aec"] is None
    assert "ok   wake word okay_nabu" in arm64.check.out, arm64.check.out
    assert "PyAudio is not installed" not in arm64.check.out  # apt's python3-pyaudio
    assert arm64.demo.rc == 0, arm64.demo.out[-4000:]
    assert "(wake_word mode)" in arm64.demo.out and "falls back" not in arm64.demo.out
    assert "tool get_time({})" in arm64.demo.out


def _armhf_as_documented(run: Install) -> None:
    """armhf: numpy from apt, soxr and pymicro-features built, no AEC, the wake word heard."""
    _installed(run)
    assert "userland armhf: extras [wake]" in run.install.out, run.install.out[:2000]
    assert run.facts["bits"] == 32
    assert run.facts["numpy"].startswith("/usr/lib/python3/dist-packages/"), run.facts
    assert run.built_from_source() == set(), run.built_from_source()  # wheels only
    assert run.facts["built_here"] == ["pymicro-features", "soxr"]  # before, as planned
    assert "pywebrtc-audio" not in run.wheels()
    assert run.facts["aec"] is not None and "pywebrtc-audio" in run.facts["aec"]
    assert run.facts["wake"] is None, run.facts["wake"]
    assert "ok   wake word okay_nabu" in run.check.out, run.check.out
    assert run.demo.rc == 0, run.demo.out[-4000:]
    assert "(wake_word mode)" in run.demo.out
    assert "tool get_time({})" in run.demo.out


def test_armhf_installs_with_apt_and_two_small_source_builds(armhf: Install) -> None:
    assert armhf.facts.get("machine") == "armv7l"
    _armhf_as_documented(armhf)


def test_armhf_under_a_64bit_kernel_installs_the_same(armhf_fake64: Install) -> None:
    """The kernel says aarch64, the userland is armhf: install.sh and pip still choose by
    the userland (no pywebrtc-audio source build that a platform_machine marker would pull)."""
    assert armhf_fake64.uname == "aarch64"
    assert armhf_fake64.facts.get("machine") == "aarch64"  # pip's markers saw aarch64 too
    _armhf_as_documented(armhf_fake64)
