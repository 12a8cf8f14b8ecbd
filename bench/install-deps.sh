#!/usr/bin/env bash
# Installs what bench/run needs on Debian 12, as root: what the tests need (scripts/install-deps.sh)
# and gnuplot, which draws the PNG of `bench/run --scale`. CI does not run the bench, so gnuplot is
# not among the packages .ci/run installs.
set -euo pipefail
exec bash "$(dirname "$0")/../scripts/install-deps.sh" gnuplot-nox
