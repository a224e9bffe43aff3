# shellcheck shell=bash
# certfiles section of tests/integration/run.sh (sourced; uses its helpers).
