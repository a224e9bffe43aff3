#!/usr/bin/env bash
# Judge memcheck's reports after make valgrind.
#
#   tests/check-valgrind-logs.sh FILE_OR_DIR...
#
# Reads every valgrind report given (a directory stands for its *.wrap-*.log
# files: the reports that tests/integration/lib.sh's PGTP_WRAP writes next to
# each proxy's log). Fails if any shows a memcheck error or a definite or
# indirect leak, and prints that report, so a failure in CI is diagnosable
# from the job's output alone. This is on top of the exit status (memcheck's
# --error-exitcode), because a proxy that never exits normally (SIGKILL, the
# harness aborting) has no exit status to judge, while the errors found up to
# then are already in its report.
set -euo pipefail

# Memcheck's error headings, and its summary line when not zero. "Process
# terminating" is a crash (SIGSEGV, SIGABRT...) seen from inside.
PATTERN='ERROR SUMMARY: [1-9]|Invalid (read|write|free)|Mismatched free|uninitialised|'
PATTERN+='unaddressable|overlap in|fishy value|(definitely|indirectly) lost in loss record|'
PATTERN+='Process terminating with default action'

[ $# -gt 0 ] || {
    echo "usage: $0 FILE_OR_DIR..." >&2
    exit 2
}
files=()
for arg in "$@"; do
    if [ -d "$arg" ]; then
        for f in "$arg"/*.wrap-*.log; do [ -e "$f" ] && files+=("$f"); done
    elif [ -f "$arg" ]; then
        files+=("$arg")
    else
        echo "check-valgrind-logs: $arg: no such file or directory" >&2
        exit 2
    fi
done
[ ${#files[@]} -gt 0 ] || {
    echo "check-valgrind-logs: no valgrind reports in $* (was PGTP_WRAP set?)" >&2
    exit 1
}

bad=() unfinished=()
for f in "${files[@]}"; do
    if grep -q -E -- "$PATTERN" "$f"; then
        bad+=("$f")
        echo "---- $f (first 150 lines) ----"
        head -n 150 "$f"
    fi
    grep -q 'ERROR SUMMARY:' "$f" || unfinished+=("$(basename "$f")")
done
# Not a failure by itself: a test may SIGKILL a proxy on purpose.
[ ${#unfinished[@]} -eq 0 ] ||
    echo "check-valgrind-logs: no leak check (killed before exit): ${unfinished[*]}"
if [ ${#bad[@]} -gt 0 ]; then
    echo "check-valgrind-logs: memcheck errors or leaks in ${#bad[@]} of ${#files[@]} reports"
    exit 1
fi
echo "check-valgrind-logs: ${#files[@]} reports, no memcheck errors or leaks"
