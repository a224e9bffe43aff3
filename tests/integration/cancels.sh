# shellcheck shell=bash
# cancels section of tests/integration/run.sh (sourced; uses its helpers).
