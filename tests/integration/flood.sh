# shellcheck shell=bash
# flood section of tests/integration/run.sh (sourced; uses its helpers).
