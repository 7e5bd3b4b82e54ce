#!/usr/bin/env bash
# Raw-log ingest benchmark: `securify import` of an auth.log corpus, through the running release
# server (admin socket, pipeline) and directly on a stopped data directory; lines/s end to end
# (parse, template mining, durable store) and the server's peak RSS.
# Usage: bench/logs.sh [CORPUS]   (default: generates 1,000,000 lines with
#        ../shared/tools/gen_authlog.py, or $GEN, into a temporary directory)
# Everything runs on 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
BIN=$PWD/target/release/securify
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

CORPUS=${1:-}
if [ -z "$CORPUS" ]; then
  GEN=${GEN:-../shared/tools/gen_authlog.py}
  CORPUS=$WORK/auth.log
  python3 "$GEN" "${LINES:-1000000}" "$CORPUS" >/dev/null
fi
echo "corpus: $CORPUS ($(wc -l <"$CORPUS") lines, $(($(stat -c %s "$CORPUS") / 1048576)) MiB)"

start_server() {
  rm -f "$WORK/addr"
  SECURIFY_ADMIN_PASSWORD="benchmark password" "$BIN" serve --listen 127.0.0.1:0 \
    --data-dir "$1" --addr-file "$WORK/addr" --log-level warn >>"$WORK/out.log" 2>>"$WORK/err.log" &
  PID=$!
  for _ in $(seq 1 3000); do [ -s "$WORK/addr" ] && break; sleep 0.01; done
}

start_server "$WORK/live"
"$BIN" import --data-dir "$WORK/live" "$CORPUS" 2>&1 | tail -1
echo "server peak RSS: $(awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$PID/status") MiB"
kill -TERM "$PID"; wait "$PID" || true; PID=

# A data directory made by a first start, then the server stopped: the command stores directly.
start_server "$WORK/direct"
kill -TERM "$PID"; wait "$PID" || true; PID=
/usr/bin/time -f "direct import peak RSS: %M KiB" "$BIN" import --data-dir "$WORK/direct" "$CORPUS" 2>&1 | tail -2
