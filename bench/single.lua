-- One event per POST /ingest, each with a unique, time-ordered event_id (thread id + counter).
local counter = 0
local threads = 0
local run = os.getenv("RUN_ID") or tostring(os.time())
-- Event time starts at the wall clock and advances, so successive runs extend the log forward.
local base = os.time()

-- Runs in the main Lua state once per thread; `tid` becomes a global of that thread.
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"event_id":"s%s-%d-%09d","timestamp":"%s","source_ip":"198.51.%d.%d","event_type":"LOGIN_ATTEMPT","username":"user%d","success":false}',
    run, tid, counter, os.date("!%Y-%m-%dT%H:%M:%SZ", base + math.floor(counter / 100)), counter % 250, math.floor(counter / 250) % 250, counter % 5000)
  return wrk.format("POST", "/ingest", nil, body)
end
