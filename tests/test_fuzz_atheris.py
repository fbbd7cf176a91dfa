"""The short CI run of the coverage-guided fuzz targets in fuzz/ (atheris).

Each target runs for PIVOX_FUZZ_SECONDS (default 10) seconds in its own process; a crash, an
uncaught exception or a broken property fails the test with atheris' report. The long run
is `fuzz/run.sh 3600`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris has wheels for x86_64 only")

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
SECONDS = int(os.environ.get("PIVOX_FUZZ_SECONDS", "10"))


@pytest.mark.parametrize("target", ["decoder", "fastpath", "config", "gemini"])
def test_fuzz_target_survives(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    result = subprocess.run(
        [sys.executable, str(FUZZ / f"fuzz_{target}.py"), f"-max_total_time={SECONDS}",
         "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=SECONDS + 120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done" in result.stderr and "runs in" in result.stderr
    assert not list(tmp_path.glob("crash-*"))
