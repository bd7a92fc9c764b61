#!/usr/bin/env bash
# The whole test suite: install, build, run unit, store (multi-process) and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
cd build
ctest --output-on-failure -j2 --timeout 600
