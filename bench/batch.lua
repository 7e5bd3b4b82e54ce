-- NDJSON batches of BATCH events per POST /ingest, each event with a unique, time-ordered
-- event_id (RANDOM_IDS=1 puts a random prefix first, for the cost of unordered ids).
-- The lines are formatted once; a request only joins them around its own request number and
-- timestamp (which advances with every request, as a live feed's does), so the load generator
-- spends little of the shared CPU.
local counter = 0
local threads = 0
local batch = tonumber(os.getenv("BATCH") or "1000")
local run = os.getenv("RUN_ID") or tostring(os.time())
local heads, mids, tails = {}, {}, {}
-- Event time starts at the wall clock and advances a second per request, so successive runs
-- keep extending the log forward in time, as a live feed does.
local base = os.time()

-- Runs in the main Lua state once per thread; `tid` becomes a global of that thread.
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  for i = 1, batch do
    heads[i] = string.format('{"event_id":"%s-%d-', run, tid)
    if os.getenv("RANDOM_IDS") == "1" then
      heads[i] = string.format('{"event_id":"%08x-%s-%d-', math.random(0, 2147483647), run, tid)
    end
    mids[i] = string.format('-%04d","timestamp":"', i)
    tails[i] = string.format(
      '","source_ip":"203.0.%d.%d","event_type":"LOGIN_ATTEMPT","username":"user%d","success":%s,"service":"sshd"}',
      i % 250, math.floor(i / 250) % 250, i * 7 % 20000, (i % 7 == 0) and "true" or "false")
  end
end

request = function()
  counter = counter + 1
  -- Zero-padded so that ids sort in the order they are sent, like UUIDv7 or ULID ids.
  local seq = string.format("%09d", counter)
  local ts = os.date("!%Y-%m-%dT%H:%M:%SZ", base + counter)
  local parts = {}
  local n = 0
  for i = 1, batch do
    parts[n + 1] = heads[i]
    parts[n + 2] = seq
    parts[n + 3] = mids[i]
    parts[n + 4] = ts
    parts[n + 5] = tails[i]
    parts[n + 6] = "\n"
    n = n + 6
  end
  return wrk.format("POST", "/ingest", nil, table.concat(parts))
end
