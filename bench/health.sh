#!/usr/bin/env bash
# The HTTPS serving path alone: `GET /health` (no store, no detection) over 64 kept-alive
# HTTP/1.1 connections, for one or more builds run alternately, ROUNDS times each, printing
# requests/s and the server's CPU time per request (from /proc/PID/stat, steadier than rates
# on a shared machine).
# Usage: BINS="/path/to/old/securify target/release/securify" bench/health.sh
#        (defaults: BINS=target/release/securify ROUNDS=4 DURATION=5s)
# Everything targets 127.0.0.1 only and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-5s}
if [ -z "${BINS:-}" ]; then
  cargo build --release --locked -q
  BINS=$PWD/target/release/securify
fi
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
TICKS=$(getconf CLK_TCK)
for round in $(seq 1 "$ROUNDS"); do
  for bin in $BINS; do
    work=$(mktemp -d)
    SECURIFY_ADMIN_PASSWORD="benchmark password" "$bin" serve --listen 127.0.0.1:0 \
      --data-dir "$work/data" --addr-file "$work/addr" --log-level warn >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 1000); do [ -s "$work/addr" ] && break; sleep 0.01; done
    addr=$(cat "$work/addr")
    case "$addr" in 127.0.0.1:*) ;; *) echo "unexpected address $addr" >&2; kill "$pid"; exit 1 ;; esac
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    out=$(wrk -t2 -c64 -d"$DURATION" "https://$addr/health")
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    cpu=$(echo "$before $after $requests $TICKS" | awk '{printf "%.1f", ($2 - $1) * 1000000 / $4 / $3}')
    echo "round $round  $bin  $rate req/s  $cpu µs CPU/request"
    kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$work"
  done
done
