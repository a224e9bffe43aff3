# shellcheck shell=bash
# certs section of tests/integration/run.sh (sourced; uses its helpers).
