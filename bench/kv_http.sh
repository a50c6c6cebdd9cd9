#!/usr/bin/env bash
# Value GET and PUT throughput over HTTP on loopback with wrk, next to a minimal axum route
# returning a constant on the same machine (the framework's ceiling), and a bulk put of 10,000
# pairs. Needs wrk (Debian: apt-get install wrk).
#
#   bench/kv_http.sh [SECONDS] [CONNECTIONS]     (default 10 s, 32 connections, 2 wrk threads)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=${2:-32}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --bin couchkv --example ceiling >&2

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

url_of() { # log file → the base URL once the server logs it
  for _ in $(seq 100); do
    addr=$(grep -o 'addr=[0-9.:]*' "$1" | head -1 | cut -d= -f2 || true)
    [ -n "$addr" ] && { echo "http://$addr"; return; }
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$1" >&2; exit 1
}

target/release/couchkv serve --addr 127.0.0.1:0 --data "$work/data" --admin bench:bench >/dev/null 2>"$work/couchkv.log" &
server=$!
base=$(url_of "$work/couchkv.log")
api="$base/client/v4/accounts/x/storage/kv/namespaces"
token=$(curl -fsS -u bench:bench -X POST "$base/_couchkv/tokens" -d '{"name":"bench","write":true}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["token"])')
ns=$(curl -fsS -H "Authorization: Bearer $token" -X POST "$api" -d '{"title":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["id"])')
curl -fsS -H "Authorization: Bearer $token" -X PUT "$api/$ns/values/hot" --data-binary 'some value' >/dev/null

cat > "$work/put.lua" <<'LUA'
wrk.method = "PUT"
wrk.body = "some value"
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, wrk.path .. "k" .. (counter % 1000))
end
LUA

rps() { awk '/Requests\/sec/ {print $2}'; }
echo "wrk: ${SECS}s, ${CONNS} connections, 2 threads; couchkv on redb (durable), API token auth" >&2
get=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -H "Authorization: Bearer $token" "$api/$ns/values/hot" | rps)
put=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -H "Authorization: Bearer $token" -s "$work/put.lua" "$api/$ns/values/" | rps)

python3 - "$work/bulk.json" <<'PY'
import json, sys
json.dump([{"key": f"bulk{i:05}", "value": "v" * 100} for i in range(10000)], open(sys.argv[1], "w"))
PY
t0=$(date +%s.%N)
curl -fsS -H "Authorization: Bearer $token" -X PUT "$api/$ns/bulk" --data-binary @"$work/bulk.json" >/dev/null
t1=$(date +%s.%N)
kill "$server"; wait "$server" 2>/dev/null || true

target/release/examples/ceiling 127.0.0.1:0 >/dev/null 2>"$work/ceiling.log" &
ceiling=$(url_of "$work/ceiling.log")
cget=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "$ceiling/x" | rps)
cput=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$work/put.lua" "$ceiling/" | rps)

printf '\n%-34s %12s %12s %8s\n' "requests/s" "ceiling" "couchkv" "ratio"
printf '%-34s %12.0f %12.0f %8.2f\n' "hot value GET" "$cget" "$get" "$(python3 -c "print($get/$cget)")"
printf '%-34s %12.0f %12.0f %8.2f\n' "value PUT (durable, 1,000 keys)" "$cput" "$put" "$(python3 -c "print($put/$cput)")"
printf '\nbulk put of 10,000 pairs (100-byte values, one request): %.3f s\n' "$(python3 -c "print($t1-$t0)")"
