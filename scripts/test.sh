#!/usr/bin/env bash
# The whole test suite: install, build, run unit, store (multi-process, every backend) and
# end-to-end tests. The PostgreSQL tests run against a throwaway server on loopback that
# this script starts (scripts/pg-server.sh) and always stops, unless PBT_TEST_POSTGRES_URI
# already names a server where the tests may create databases.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/setup.sh build

pg_server="$root/scripts/pg-server.sh"
pg_dir=""
stop_pg() {  # runs on exit, from whatever directory the script is in by then
  if [ -n "$pg_dir" ]; then
    if ! "$pg_server" stop "$pg_dir" >/dev/null 2>&1; then
      echo "test.sh: could not stop the PostgreSQL server in $pg_dir; left it there" >&2
      return
    fi
    rm -rf "$pg_dir"
  fi
}
trap stop_pg EXIT
trap 'exit 130' INT TERM
if [ -z "${PBT_TEST_POSTGRES_URI:-}" ]; then
  pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/pbt-test-pg.XXXXXX")
  started=""
  for _ in 1 2 3; do  # a free port, taken by someone else before the server binds it: try another
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if "$pg_server" start "$pg_dir" "$port"; then
      started=yes
      break
    fi
    "$pg_server" stop "$pg_dir" >/dev/null 2>&1 || true
    rm -rf "$pg_dir" && mkdir -p "$pg_dir"
  done
  if [ -z "$started" ]; then
    echo "test.sh: could not start a PostgreSQL server for the tests (see above);" \
         "set PBT_TEST_POSTGRES_URI to a server of your own" >&2
    exit 1
  fi
  export PBT_TEST_POSTGRES_URI="postgresql://postgres@127.0.0.1:$port/postgres"
fi
echo "test.sh: PostgreSQL tests use ${PBT_TEST_POSTGRES_URI}"

cd build
status=0
ctest --output-on-failure -j2 --timeout 600 || status=$?
exit "$status"
