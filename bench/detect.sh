#!/usr/bin/env bash
# Detection benchmark on a generated auth.log with ground truth (../shared/tools/gen_authlog.py):
#   1. `securify import` through the running release server (admin socket);
#   2. the same corpus through POST /api/v1/logs (batches of LOG_BATCH lines, two in flight)
#      into a fresh server;
# each: lines/s end to end (parse, mine, store durably, detect, record alerts), the server's
# peak RSS, and the blocklist scored against the truth (bench/score.py): recall per attacker
# class, precision, benign addresses listed, history alerts.
# Usage: bench/detect.sh [CORPUS]   (default: LINES=1000000 generated into a temporary directory;
#        a given CORPUS needs CORPUS.truth.json next to it)
# Everything runs on 127.0.0.1 and stops by itself.
set -euo pipefail
. "$(dirname "$0")/common.sh"

CORPUS=${1:-}
if [ -z "$CORPUS" ]; then
  CORPUS=$WORK/auth.log
  python3 "${GEN:-../shared/tools/gen_authlog.py}" "${LINES:-1000000}" "$CORPUS" >/dev/null
fi
TRUTH=$CORPUS.truth.json
LINES_IN=$(wc -l <"$CORPUS")
echo "corpus: $CORPUS ($LINES_IN lines)"

start() {
  start_server "$1"
  TOKEN=$("$BIN" token create --name bench --scope ingest --scope read --data-dir "$1" 2>/dev/null)
}

# Every alert, following the cursor.
fetch_alerts() {
  python3 - "$ADDR" "$TOKEN" >"$WORK/alerts.json" <<'PY'
import json, ssl, sys, urllib.request
addr, token = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
alerts, cursor = [], None
while True:
    url = f"https://{addr}/api/v1/alerts?limit=500" + (f"&cursor={cursor}" if cursor else "")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    page = json.load(urllib.request.urlopen(req, context=ctx))
    alerts += page["alerts"]
    cursor = page["next_cursor"]
    if not cursor:
        break
json.dump({"alerts": alerts}, sys.stdout)
PY
}

report() {
  echo "server peak RSS: $(peak_rss) MiB"
  # Waits that need the stream to go quiet (the stuffing rule's grace) settle after 3 s.
  sleep 5
  curl -sk --fail -H "Authorization: Bearer $TOKEN" "https://$ADDR/api/v1/blocklist" >"$WORK/blocklist.txt"
  fetch_alerts
  python3 bench/score.py "$TRUTH" "$WORK/blocklist.txt" "$WORK/alerts.json"
  stop_server
}

echo "== securify import (through the server)"
start "$WORK/import"
"$BIN" import --data-dir "$WORK/import" "$CORPUS" 2>&1 | tail -1
report

echo "== POST /api/v1/logs (batches of ${LOG_BATCH:=5000} lines, two in flight)"
start "$WORK/logs"
split -l "$LOG_BATCH" -d -a 5 "$CORPUS" "$WORK/part."
START=$(date +%s%N)
ls "$WORK"/part.* | xargs -P 2 -I{} curl -sk --fail -o /dev/null -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: text/plain" --data-binary @{} "https://$ADDR/api/v1/logs?year=${YEAR:-2026}"
END=$(date +%s%N)
echo "$LINES_IN lines in $(( (END - START) / 1000000 )) ms: $(( LINES_IN * 1000000000 / (END - START) )) lines/s"
report
