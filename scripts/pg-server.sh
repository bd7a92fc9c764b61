#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, on loopback, with Debian's binaries.
#
#   scripts/pg-server.sh start DIR PORT   initdb in DIR/data (when new) and start it on 127.0.0.1:PORT
#   scripts/pg-server.sh stop DIR         stop it (fast: open connections are cut)
#   scripts/pg-server.sh restart DIR      stop and start it again on the same port
#   scripts/pg-server.sh status DIR       exit 0 when it is running
#
# Trust authentication on loopback (user postgres, no password), fsync off: for tests
# only, never for data you want to keep. The server refuses to run as root, so as root
# it runs as the `postgres` system user (created by Debian's postgresql package), and
# DIR is given to that user. The URI to use afterwards: postgresql://postgres@127.0.0.1:PORT/postgres
set -euo pipefail

usage() {
  echo "usage: $0 start DIR PORT | stop DIR | restart DIR | status DIR" >&2
  exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2

# The newest installed major version (Debian 12 ships 15).
bin=""
for b in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
  [ -x "$b/initdb" ] && [ -x "$b/pg_ctl" ] && bin=$b
done
if [ -z "$bin" ]; then
  echo "pg-server: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (install the postgresql package)" >&2
  exit 1
fi

# Runs a command as the user that owns the cluster.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    [ $# -eq 3 ] || usage
    port=$3
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" -eq 0 ]; then
      if ! id -u postgres >/dev/null 2>&1; then
        echo "pg-server: running as root and there is no 'postgres' user to run the server as" >&2
        exit 1
      fi
      chown postgres: "$dir"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
      cat >>"$dir/data/postgresql.conf" <<EOF
# pg-server.sh: a throwaway test cluster
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 64MB
log_min_messages = warning
log_connections = off
EOF
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "-p $port" start >/dev/null; then
      echo "pg-server: the server did not start; its log:" >&2
      tail -n 30 "$dir/server.log" >&2 || true
      exit 1
    fi
    echo "pg-server: running on 127.0.0.1:$port (postgresql://postgres@127.0.0.1:$port/postgres), data in $dir/data"
    ;;
  stop)
    [ -f "$dir/data/PG_VERSION" ] || { echo "pg-server: no cluster in $dir" >&2; exit 1; }
    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
  restart)
    [ -f "$dir/data/PG_VERSION" ] || { echo "pg-server: no cluster in $dir" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null
    ;;
  status)
    [ -f "$dir/data/PG_VERSION" ] || exit 3
    as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null
    ;;
  *)
    usage
    ;;
esac
