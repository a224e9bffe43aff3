# shellcheck shell=bash
# load section of tests/integration/run.sh (sourced; uses its helpers).
