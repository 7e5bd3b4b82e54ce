# Shared by the benchmark scripts (sourced, not run): builds the release binary (or takes the
# one named by BIN, e.g. an older build to compare against in the same hour), makes a
# temporary work directory removed on exit (with the server stopped), and starts servers.
# Everything targets 127.0.0.1 only.
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -q
  BIN=$PWD/target/release/securify
fi
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# start_server DATA_DIR: starts the release server on 127.0.0.1 port 0 with DATA_DIR; sets PID,
# START_NS (when it was started) and ADDR (once it listens).
start_server() {
  rm -f "$WORK/addr"
  START_NS=$(date +%s%N)
  SECURIFY_ADMIN_PASSWORD="benchmark password" "$BIN" serve --listen 127.0.0.1:0 \
    --data-dir "$1" --addr-file "$WORK/addr" --log-level warn >>"$WORK/out.log" 2>>"$WORK/err.log" &
  PID=$!
  for _ in $(seq 1 3000); do [ -s "$WORK/addr" ] && break; sleep 0.01; done
  ADDR=$(cat "$WORK/addr")
  case "$ADDR" in 127.0.0.1:*) ;; *) echo "unexpected address $ADDR" >&2; exit 1 ;; esac
}

# stop_server: SIGTERM, and wait for the clean stop.
stop_server() { kill -TERM "$PID"; wait "$PID" || true; PID=; }

# peak_rss: the running server's peak RSS in MiB.
peak_rss() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$PID/status"; }
