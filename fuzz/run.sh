#!/bin/sh
# Coverage-guided fuzzing (atheris) of the frame decoder, the fast path and the config loader.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET]   (CI runs 10 s each through tests/test_fuzz_atheris.py;
# a long run: fuzz/run.sh 3600). Corpora grow in fuzz/corpus/<target>/; a crash is written to
# fuzz/crashes/ and makes this script exit non-zero.
set -eu
cd "$(dirname "$0")/.."
seconds="${1:-15}"
python="${PYTHON:-.venv/bin/python}"
mkdir -p fuzz/crashes
status=0
for target in decoder fastpath config gemini; do
    mkdir -p "fuzz/corpus/$target"
    echo "== fuzz_$target for ${seconds}s"
    log=$(mktemp)
    if ! "$python" "fuzz/fuzz_$target.py" -max_total_time="$seconds" -rss_limit_mb=2048 \
            -artifact_prefix=fuzz/crashes/ "fuzz/corpus/$target" >"$log" 2>&1; then
        status=1
        cat "$log"
    else
        tail -n 3 "$log"
    fi
    rm -f "$log"
done
exit $status
