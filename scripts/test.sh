#!/usr/bin/env bash
# The whole test suite: install, build, run unit, store (multi-process, every backend) and
# end-to-end tests. The PostgreSQL tests run against a throwaway server on loopback that
# this script starts (scripts/pg-server.sh) and always stops, unless PBT_TEST_POSTGRES_URI
# already names a server where the tests may create databases.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build

source scripts/pg-for-tests.sh
pbt_pg_for_tests

cd build
status=0
ctest --output-on-failure -j2 --timeout 600 || status=$?
exit "$status"
