-- NDJSON batches of BATCH events per POST /ingest, each event with a unique event_id.
local counter = 0
local threads = 0
local batch = tonumber(os.getenv("BATCH") or "1000")
local run = os.getenv("RUN_ID") or tostring(os.time())

-- Runs in the main Lua state once per thread; `tid` becomes a global of that thread.
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

request = function()
  local lines = {}
  for i = 1, batch do
    counter = counter + 1
    lines[i] = string.format(
      '{"event_id":"%s-%d-%d","timestamp":"2024-05-%02dT%02d:%02d:%02dZ","source_ip":"203.0.%d.%d","event_type":"LOGIN_ATTEMPT","username":"user%d","success":%s,"service":"sshd"}',
      run, tid, counter, 1 + math.floor(counter / 86400) % 28, math.floor(counter / 3600) % 24, math.floor(counter / 60) % 60, counter % 60,
      counter % 250, math.floor(counter / 250) % 250, counter % 20000, (counter % 7 == 0) and "true" or "false")
  end
  return wrk.format("POST", "/ingest", nil, table.concat(lines, "\n"))
end
