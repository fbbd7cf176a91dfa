#!/bin/sh
# Coverage-guided fuzzing (atheris) of the frame decoder, the fast path and the config loader.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET]   (CI: 15; a long run: 3600)
# Corpora grow in fuzz/corpus/<target>/; crashes are written to fuzz/crashes/.
set -eu
cd "$(dirname "$0")/.."
seconds="${1:-15}"
python="${PYTHON:-.venv/bin/python}"
mkdir -p fuzz/crashes
for target in decoder fastpath config; do
    mkdir -p "fuzz/corpus/$target"
    echo "== fuzz_$target for ${seconds}s"
    "$python" "fuzz/fuzz_$target.py" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -artifact_prefix=fuzz/crashes/ "fuzz/corpus/$target" 2>&1 | tail -n 3
done
