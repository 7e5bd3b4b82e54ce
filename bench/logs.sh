#!/usr/bin/env bash
# Raw-log ingest benchmark: `securify import` of an auth.log corpus, through the running release
# server (admin socket, pipeline) and directly on a stopped data directory; lines/s end to end
# (parse, template mining, durable store) and the server's peak RSS.
# Usage: bench/logs.sh [CORPUS]   (default: generates 1,000,000 lines with
#        ../shared/tools/gen_authlog.py, or $GEN, into a temporary directory)
# Everything runs on 127.0.0.1 and stops by itself.
set -euo pipefail
. "$(dirname "$0")/common.sh"

CORPUS=${1:-}
if [ -z "$CORPUS" ]; then
  GEN=${GEN:-../shared/tools/gen_authlog.py}
  CORPUS=$WORK/auth.log
  python3 "$GEN" "${LINES:-1000000}" "$CORPUS" >/dev/null
fi
echo "corpus: $CORPUS ($(wc -l <"$CORPUS") lines, $(($(stat -c %s "$CORPUS") / 1048576)) MiB)"

start_server "$WORK/live"
"$BIN" import --data-dir "$WORK/live" "$CORPUS" 2>&1 | tail -1
echo "server peak RSS: $(peak_rss) MiB"
stop_server

# A data directory made by a first start, then the server stopped: the command stores directly.
start_server "$WORK/direct"
stop_server
/usr/bin/time -f "direct import peak RSS: %M KiB" "$BIN" import --data-dir "$WORK/direct" "$CORPUS" 2>&1 | tail -2
