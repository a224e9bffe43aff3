# shellcheck shell=bash
# memory section of tests/integration/run.sh (sourced; uses its helpers).
