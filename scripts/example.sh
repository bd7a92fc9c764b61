#!/usr/bin/env bash
# The main job: install, build, and run a real PBT population on the paper's toy problem
# (SQLite store, local worker processes), ending with the result.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
rm -rf runs/toy
./build/pbt run examples/toy.toml --run runs/toy
echo
./build/pbt events --run runs/toy | head -12 || true   # the first events of the lineage
echo
./build/pbt report --run runs/toy   # runs/toy/report.html: curves, schedules, lineage tree (opens offline)
