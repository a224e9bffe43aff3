# shellcheck shell=bash
# abuse section of tests/integration/run.sh (sourced; uses its helpers).
