# shellcheck shell=bash
# logs section of tests/integration/run.sh (sourced; uses its helpers).
