# shellcheck shell=bash
# faults section of tests/integration/run.sh (sourced; uses its helpers).
