# shellcheck shell=bash
# checklib.sh - the counters and verdicts of the tests/check-*.sh scripts
# that print "ok   WHAT" / "FAIL WHAT" lines (check-deb, check-dockerfile,
# check-image). Sourced; each script prints its own "NAME: N passed, M
# failed" line from PASS and FAIL.
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
check() { # DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
