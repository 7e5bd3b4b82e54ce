-- One event per POST /ingest, each with a unique event_id (thread id + counter).
local counter = 0
local threads = 0
local run = os.getenv("RUN_ID") or tostring(os.time())

-- Runs in the main Lua state once per thread; `tid` becomes a global of that thread.
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"event_id":"s%s-%d-%d","timestamp":"2024-05-01T12:%02d:%02dZ","source_ip":"198.51.%d.%d","event_type":"LOGIN_ATTEMPT","username":"user%d","success":false}',
    run, tid, counter, math.floor(counter / 60) % 60, counter % 60, counter % 250, math.floor(counter / 250) % 250, counter % 5000)
  return wrk.format("POST", "/ingest", nil, body)
end
