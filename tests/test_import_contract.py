"""The import contracts in pyproject.toml hold on the tree and refuse a deliberate violation.

`lint-imports` runs on a copy of daemon/ and pyproject.toml, once as it is and once with an
edge (or an I/O library) imported into the state machine's module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = ("import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` in `tree` (its pyproject.toml), importing pivox from its daemon/."""
    env = {**os.environ, "PYTHONPATH": str(tree / "daemon"), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    shutil.copytree(ROOT / "daemon", root / "daemon",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", root)
    return root


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("line", "broken"), [
    ("import websockets", ["the core does no I/O"]),
    ("import asyncio", ["the core does no I/O"]),  # the standard library is checked too
    ("from pivox.net import link", ["layers: commands", "the core does no I/O"]),
    ("from pivox.cli import main", ["layers: commands", "nothing imports the commands"]),
])
def test_an_edge_imported_into_the_state_machine_breaks_the_contract(
    tree: Path, line: str, broken: list[str]
) -> None:
    machine = tree / "daemon" / "pivox" / "core" / "machine.py"
    clean = machine.read_text()
    machine.write_text(clean.replace("import enum\n", f"import enum\n{line}\n", 1))
    try:
        result = lint_imports(tree)
    finally:
        machine.write_text(clean)
    assert result.returncode != 0
    report = result.stdout.split("Broken contracts", 1)[1]
    for name in broken:
        assert name in report
    assert "pivox.core.machine ->" in report
