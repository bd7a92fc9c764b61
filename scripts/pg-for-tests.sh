# Sourced by scripts/test.sh and scripts/ci-variants.sh. pbt_pg_for_tests: unless
# PBT_TEST_POSTGRES_URI already names a server where the tests may create databases, start a
# throwaway one on loopback (scripts/pg-server.sh) and export its URI; it is stopped when the
# sourcing script exits (an EXIT trap), whatever directory the script is in by then.
pbt_pg_server="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pg-server.sh"
pbt_pg_dir=""

pbt_pg_stop() {
  if [ -n "$pbt_pg_dir" ]; then
    if ! "$pbt_pg_server" stop "$pbt_pg_dir" >/dev/null 2>&1; then
      echo "$(basename "$0"): could not stop the PostgreSQL server in $pbt_pg_dir; left it there" >&2
      return
    fi
    rm -rf "$pbt_pg_dir"
    pbt_pg_dir=""
  fi
}

pbt_pg_for_tests() {
  trap pbt_pg_stop EXIT
  trap 'exit 130' INT TERM
  if [ -z "${PBT_TEST_POSTGRES_URI:-}" ]; then
    pbt_pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/pbt-test-pg.XXXXXX")
    local started="" port
    for _ in 1 2 3; do  # a free port, taken by someone else before the server binds it: try another
      port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      if "$pbt_pg_server" start "$pbt_pg_dir" "$port"; then
        started=yes
        break
      fi
      "$pbt_pg_server" stop "$pbt_pg_dir" >/dev/null 2>&1 || true
      rm -rf "$pbt_pg_dir" && mkdir -p "$pbt_pg_dir"
    done
    if [ -z "$started" ]; then
      echo "$(basename "$0"): could not start a PostgreSQL server for the tests (see above);" \
           "set PBT_TEST_POSTGRES_URI to a server of your own" >&2
      exit 1
    fi
    export PBT_TEST_POSTGRES_URI="postgresql://postgres@127.0.0.1:$port/postgres"
  fi
  echo "$(basename "$0"): PostgreSQL tests use ${PBT_TEST_POSTGRES_URI}"
}
