#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: installs Debian's postgresql when no initdb is
# found, makes a cluster in a temporary directory (owned by the `postgres` user when run as
# root, as initdb refuses root), starts it on a free loopback port with trust auth for the
# `couchkv` role, and prints `export COUCHKV_TEST_POSTGRES=postgres://…` plus the command that
# stops it. Use:  eval "$(scripts/postgres.sh start)" … eval "$COUCHKV_TEST_POSTGRES_STOP"
set -euo pipefail

find_bin() {
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null && dirname "$(command -v initdb)"
}

bin=$(find_bin || true)
if [ -z "$bin" ]; then
  echo "installing PostgreSQL from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bin=$(find_bin)
fi

dir=$(mktemp -d /tmp/couchkv-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_owner=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  as_owner=(runuser -u postgres --)
fi
"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U couchkv -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >&2 \
  || { cat "$dir/server.log" >&2; exit 1; }
echo "export COUCHKV_TEST_POSTGRES='postgres://couchkv@127.0.0.1:$port/postgres'"
echo "export COUCHKV_TEST_POSTGRES_STOP='${as_owner[*]} $bin/pg_ctl -D $dir/data -m fast stop >/dev/null; rm -rf $dir'"
