#!/usr/bin/env bash
# Ingest benchmark: starts the release binary on 127.0.0.1 with a fresh data directory and
# drives it with wrk over HTTPS, measuring in one run:
#   (a) a no-op HTTPS endpoint (GET /health), the baseline;
#   (b) single-event POST /ingest at 64 connections: events/s and p99;
#   (c) NDJSON batches of 1,000 events: events/s;
#   (d) RSS after EVENTS_TARGET (default 10M) stored events;
#   (e) time from start to /ready with those events stored (after a clean stop);
#   (f) the same after SIGKILL (redb repairs its allocator state on that first open).
# Usage: bench/run.sh   (defaults: ROUNDS=3 DURATION=10s EVENTS_TARGET=10000000 CONNECTIONS=64)
# Everything targets 127.0.0.1 only and stops by itself.
set -euo pipefail
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
EVENTS_TARGET=${EVENTS_TARGET:-10000000}
CONNECTIONS=${CONNECTIONS:-64}

if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
. "$(dirname "$0")/common.sh"

wait_ready() {
  until curl -skf "https://$ADDR/ready" -o "$WORK/ready.json"; do sleep 0.005; done
  READY_MS=$(( ($(date +%s%N) - START_NS) / 1000000 ))
}

# Runs wrk with a Lua script plus the reporting hook; prints the RESULT line.
run_wrk() {
  local script=$1 conns=$2; shift 2
  cat "bench/$script" bench/report.lua >"$WORK/script.lua"
  wrk -t2 -c"$conns" -d"$DURATION" --timeout 10s -s "$WORK/script.lua" "$@" "https://$ADDR" | grep '^RESULT'
}

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
per_sec() { echo "$(field "$1" requests) $2 $(field "$1" duration_us)" | awk '{printf "%.0f", $1 * $2 * 1000000 / $3}'; }

start_server "$WORK/data"
wait_ready
TOKEN=$("$BIN" token create --name bench --scope ingest --scope read --data-dir "$WORK/data" 2>/dev/null)
AUTH="Authorization: Bearer $TOKEN"

# (a), (b) and (c) run interleaved for ROUNDS rounds and each reports its median, because the
# machine is shared: a neighbour's burst then hits all three alike instead of one of them.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
cat bench/report.lua >"$WORK/noop.lua"
A_RATES=(); B_RATES=(); C_RATES=(); A_P99=(); B_P99=(); B_CPU=(); C_CPU=(); B_NON2XX=0; C_NON2XX=0
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS"
  A=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --timeout 10s -s "$WORK/noop.lua" "https://$ADDR/health" | grep '^RESULT')
  echo "  (a) GET /health:             $A"
  A_RATES+=("$(per_sec "$A" 1)"); A_P99+=("$(field "$A" p99_us)")

  t0=$(cpu_ticks)
  B=$(RUN_ID=b$round run_wrk single.lua "$CONNECTIONS" -H "$AUTH" -H "Content-Type: application/json")
  t1=$(cpu_ticks)
  echo "  (b) single-event ingest:     $B"
  B_RATES+=("$(per_sec "$B" 1)"); B_P99+=("$(field "$B" p99_us)")
  B_CPU+=("$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$(field "$B" requests)" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')")
  B_NON2XX=$((B_NON2XX + $(field "$B" errors_status)))

  t0=$(cpu_ticks)
  C=$(RUN_ID=c$round BATCH=1000 run_wrk batch.lua 8 -H "$AUTH" -H "Content-Type: application/x-ndjson")
  t1=$(cpu_ticks)
  echo "  (c) NDJSON batches of 1000:  $C"
  C_RATES+=("$(per_sec "$C" 1000)")
  C_CPU+=("$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$(field "$C" requests)" 'BEGIN {printf "%.2f", t / hz * 1e6 / (n * 1000)}')")
  C_NON2XX=$((C_NON2XX + $(field "$C" errors_status)))
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

echo "(d) loading until $EVENTS_TARGET events are stored"
round=0
while :; do
  stored=$(curl -sk "https://$ADDR/ready" | sed -n 's/.*"events":\([0-9]*\).*/\1/p')
  [ "$stored" -ge "$EVENTS_TARGET" ] && break
  round=$((round + 1))
  RUN_ID=d$round BATCH=1000 run_wrk batch.lua 8 -H "$AUTH" -H "Content-Type: application/x-ndjson" >/dev/null
done
RSS_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
HWM_KB=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
DB_BYTES=$(stat -c %s "$WORK/data/securify.redb")
echo "    stored=$stored rss_kb=$RSS_KB peak_rss_kb=$HWM_KB db_bytes=$DB_BYTES"

echo "(e) restart with $stored events stored: time to /ready"
kill -TERM "$PID"; wait "$PID" || true; PID=
start_server "$WORK/data"
wait_ready
RESTART_RSS_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
CLEAN_READY_MS=$READY_MS
echo "    ready_ms=$CLEAN_READY_MS rss_after_restart_kb=$RESTART_RSS_KB"

echo "(f) SIGKILL with $stored events stored, then time to /ready"
kill -KILL "$PID"; wait "$PID" 2>/dev/null || true; PID=
start_server "$WORK/data"
wait_ready
CRASH_READY_MS=$READY_MS
echo "    ready_ms=$CRASH_READY_MS"

A_RATE=$(median "${A_RATES[@]}"); B_RATE=$(median "${B_RATES[@]}"); C_RATE=$(median "${C_RATES[@]}")
ms() { awk -v us="$1" 'BEGIN {printf "%.1f", us / 1000}'; }
echo
echo "Medians of $ROUNDS interleaved rounds of $DURATION; rates by round: (a) ${A_RATES[*]}; (b) ${B_RATES[*]}; (c) ${C_RATES[*]}"
echo
echo "| measure | result |"
echo "|---|---|"
echo "| (a) no-op HTTPS GET /health, $CONNECTIONS connections | $A_RATE req/s, p99 $(ms "$(median "${A_P99[@]}")") ms |"
echo "| (b) single-event POST /ingest, durable, $CONNECTIONS connections | $B_RATE events/s = $(awk "BEGIN {printf \"%.0f\", 100 * $B_RATE / $A_RATE}") % of (a); p99 $(ms "$(median "${B_P99[@]}")") ms; server CPU $(median "${B_CPU[@]}") µs/event; non-2xx $B_NON2XX |"
echo "| (c) NDJSON batches of 1,000, 8 connections | $C_RATE events/s; server CPU $(median "${C_CPU[@]}") µs/event; non-2xx $C_NON2XX |"
echo "| (d) RSS with $stored events stored | $((RSS_KB / 1024)) MiB (peak $((HWM_KB / 1024)) MiB), database $((DB_BYTES / 1048576)) MiB |"
echo "| (e) start to /ready with $stored events, after a clean stop | $CLEAN_READY_MS ms (RSS then $((RESTART_RSS_KB / 1024)) MiB) |"
echo "| (f) start to /ready with $stored events, after SIGKILL | $CRASH_READY_MS ms |"
