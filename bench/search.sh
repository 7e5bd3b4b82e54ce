#!/usr/bin/env bash
# Search and dashboard benchmark at scale, on a generated auth.log (../shared/tools/gen_authlog.py):
#   1. `securify import` of the corpus into a fresh release server, sampling every second the
#      events stored, the documents indexed (GET /ready) and the server's RSS (anonymous and
#      file-backed): ingest rate, index rate while ingest continues, catch-up after it ends;
#   2. with everything indexed, latency over HTTPS on one connection (wrk, DURATION each):
#      GET /health (the baseline), the overview page per range, GET /api/v1/search for a term
#      and a phrase over the newest 24 h of the corpus and over all time.
# Usage: bench/search.sh CORPUS   (for example 10,000,000 lines:
#          python3 ../shared/tools/gen_authlog.py 10000000 auth10m.log --start '2026-09-14 00:00:00')
#        KEEP=DIR keeps the data directory in DIR for `DATA_DIR=DIR cargo bench --bench search`,
#        and the samples (seconds, events, documents, lag in commits, RSS anonymous and file MiB)
#        beside it in search-samples.txt.
# Everything runs on 127.0.0.1 and stops by itself.
set -euo pipefail
. "$(dirname "$0")/common.sh"

CORPUS=${1:?usage: bench/search.sh CORPUS}
DURATION=${DURATION:-10s}
DATA=${KEEP:-$WORK/data}
[ -e "$DATA" ] && { echo "$DATA exists; give KEEP a new directory" >&2; exit 1; }
LINES_IN=$(wc -l <"$CORPUS")
echo "corpus: $CORPUS ($LINES_IN lines)"

start_server "$DATA"
TOKEN=$("$BIN" token create --name bench --scope read --data-dir "$DATA" 2>/dev/null)
ready() { curl -sk --fail "https://$ADDR/ready"; }

# One line per second: seconds since start, events stored, documents indexed, RSS anon and
# file-backed (MiB).
sample() {
  while kill -0 "$PID" 2>/dev/null; do
    local t r
    t=$(( ($(date +%s%N) - START_NS) / 1000000 ))
    r=$(ready || echo '{}')
    echo "$t $(echo "$r" | jq -r '"\(.events // 0) \(.index.documents // 0) \(.index.lag_commits // 0)"') \
$(awk '/^RssAnon/ {a = $2} /^RssFile/ {f = $2} END {printf "%d %d", a / 1024, f / 1024}' "/proc/$PID/status")"
    sleep 1
  done
}
sample >"$WORK/samples" &
SAMPLER=$!

echo "== import"
IMPORT_START=$(date +%s%N)
"$BIN" import --data-dir "$DATA" "$CORPUS" 2>&1 | tail -1
IMPORT_END=$(date +%s%N)
DOCS_AT_END=$(ready | jq .index.documents)
until [ "$(ready | jq .index.lag_commits)" = 0 ]; do sleep 0.2; done
CAUGHT_UP=$(date +%s%N)
sleep 1
kill "$SAMPLER"
EVENTS=$(ready | jq .events)
DOCS=$(ready | jq .index.documents)
awk -v n="$LINES_IN" -v ms=$(( (IMPORT_END - IMPORT_START) / 1000000 )) -v d="$DOCS_AT_END" \
  -v catch=$(( (CAUGHT_UP - IMPORT_END) / 1000000 )) -v all=$(( (CAUGHT_UP - IMPORT_START) / 1000000 )) \
  -v docs="$DOCS" -v events="$EVENTS" 'BEGIN {
  printf "import: %d lines in %.1f s = %.0f lines/s; %d events stored\n", n, ms / 1000, n * 1000 / ms, events
  printf "indexed while the import ran: %d documents = %.0f docs/s\n", d, d * 1000 / ms
  printf "caught up %.1f s after the import: %d documents searchable %.1f s after the start = %.0f docs/s\n",
    catch / 1000, docs, all / 1000, docs * 1000 / all
}'
awk 'NR > 1 && $3 > prev { busy = 1 } { if (busy && $5 > anon) anon = $5; if (busy && $5 + $6 > rss) rss = $5 + $6; prev = $3 }
  END { printf "RSS while indexing: peak %d MiB (anonymous %d MiB)\n", rss, anon }' "$WORK/samples"
echo "server peak RSS (VmHWM): $(peak_rss) MiB; database $(du -m "$DATA/securify.redb" | cut -f1) MiB, index $(du -sm "$DATA/index" | cut -f1) MiB"
if [ -n "${KEEP:-}" ]; then cp "$WORK/samples" "$(dirname "$KEEP")/search-samples.txt"; fi

# The newest event's time bounds the "24 h" ranges: the corpus may end before today.
NEWEST=$(curl -sk --fail -H "Authorization: Bearer $TOKEN" "https://$ADDR/api/v1/events?limit=1" |
  jq -r '.events[0].timestamp')
UNTIL=$(date -u -d "$NEWEST + 1 second" +%Y-%m-%dT%H:%M:%SZ)
FROM=$(date -u -d "$NEWEST - 24 hours" +%Y-%m-%dT%H:%M:%SZ)
BUSIEST=$(curl -sk --fail -H "Authorization: Bearer $TOKEN" \
  "https://$ADDR/api/v1/stats/top?by=ip&from=$FROM&to=$UNTIL&limit=1" | jq -r '.items[0].key')

# The dashboard's session cookie, through the login form (the login is an event too, stored
# after the newest one of the corpus was read).
JAR=$WORK/cookies
LOGIN=$(curl -sk -c "$JAR" "https://$ADDR/login")
CSRF=$(echo "$LOGIN" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p')
curl -sk -b "$JAR" -c "$JAR" -o /dev/null --fail --data-urlencode "csrf=$CSRF" \
  --data-urlencode "username=admin" --data-urlencode "password=benchmark password" "https://$ADDR/login"
SESSION=$(awk '$6 == "__Host-securify_session" {print $7}' "$JAR")
[ -n "$SESSION" ] || { echo "login failed" >&2; exit 1; }

# latency NAME PATH HEADER: one connection for DURATION; p50 / p95 / p99 in ms.
latency() {
  local out
  out=$(wrk -t1 -c1 -d"$DURATION" --timeout 10s -H "$3" -s bench/report.lua "https://$ADDR$2" | grep '^RESULT')
  echo "$out" | tr ' ' '\n' | awk -F= -v name="$1" -v path="$2" '
    { v[$1] = $2 }
    END {
      if (v["errors_status"] > 0) { printf "%s: %d non-2xx replies\n", name, v["errors_status"]; exit 1 }
      printf "%-34s %8.2f %8.2f %8.2f  %6d requests  %s\n", name, v["p50_us"] / 1000, v["p95_us"] / 1000,
        v["p99_us"] / 1000, v["requests"], path
    }'
}

BEARER="Authorization: Bearer $TOKEN"
COOKIE="Cookie: __Host-securify_session=$SESSION"
echo "== latency over HTTPS, one connection, $DURATION each (ms: p50 p95 p99); newest event $NEWEST"
latency "baseline GET /health" "/health" "Accept: */*"
for range in 1h 24h 7d 30d; do
  latency "overview, $range" "/?range=$range&until=$UNTIL" "$COOKIE"
done
latency "overview, 24h to now" "/" "$COOKIE"
for query in failed '%22invalid%20user%22' 'failed%20AND%20user%3Aroot'; do
  latency "search $query, 24 h" "/api/v1/search?q=$query&from=$FROM&to=$UNTIL" "$BEARER"
  latency "search $query, all time" "/api/v1/search?q=$query" "$BEARER"
done
latency "address page, busiest of the day" "/ip/$BUSIEST" "$COOKIE"
latency "account page, root" "/user/root" "$COOKIE"
latency "search page, phrase, all time" "/search?q=%22invalid%20user%22&range=all" "$COOKIE"
stop_server
