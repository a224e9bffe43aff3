#!/usr/bin/env bash
# run-all.sh SECONDS JOBS TARGET... - run every libFuzzer target for SECONDS,
# JOBS at a time, on its corpus (build/fuzz/corpus-NAME, seeded from
# tests/fuzz/corpus/NAME). Each target's output goes to TARGET.log; a target
# that fails (a crash, a leak, a failed check) has its log's end printed and
# makes the run fail. Exit 0 only if every target ran clean.
set -euo pipefail
secs=$1 jobs=$2
shift 2

run_one() {
    local t=$1 secs=$2 n dir
    n=$(basename "$t")
    dir=$(dirname "$t")
    mkdir -p "$dir/corpus-$n"
    local corpora=("$dir/corpus-$n")
    [ ! -d "tests/fuzz/corpus/$n" ] || corpora+=("tests/fuzz/corpus/$n")
    if "$t" -max_total_time="$secs" -max_len=12000 "${corpora[@]}" >"$t.log" 2>&1; then
        echo "fuzz: $n ran ${secs}s: $(grep -E '^Done [0-9]+ runs' "$t.log" || echo done)"
    else
        echo "fuzz: $n FAILED (log: $t.log):"
        tail -n 40 "$t.log"
        return 1
    fi
}
export -f run_one

printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$1" "$2"' _ {} "$secs"
