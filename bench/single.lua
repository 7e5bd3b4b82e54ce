-- One event per POST /ingest, each with a unique, time-ordered event_id (thread id + counter).
-- Every body has the same length, so the request head (with its Content-Length) is built once
-- per thread and a request costs one string.format: the load generator shares the CPU with the
-- server, and the baseline (a) spends nothing on building requests either.
local counter = 0
local threads = 0
local run = os.getenv("RUN_ID") or tostring(os.time())
-- Event time starts at the wall clock and advances a second every 100 requests, so
-- successive runs extend the log forward.
local base = os.time()
local head
local stamp_second, stamp = nil, nil

-- Runs in the main Lua state once per thread; `tid` becomes a global of that thread.
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local function body(n)
  local second = base + math.floor(n / 100)
  if second ~= stamp_second then
    stamp_second, stamp = second, os.date("!%Y-%m-%dT%H:%M:%SZ", second)
  end
  -- Fixed widths: octets 100-249 and zero-padded counters keep the length constant.
  return string.format(
    '{"event_id":"s%s-%d-%09d","timestamp":"%s","source_ip":"198.51.%d.%d","event_type":"LOGIN_ATTEMPT","username":"user%04d","success":false}',
    run, tid, n, stamp, 100 + n % 150, 100 + math.floor(n / 150) % 150, n % 5000)
end

function init(args)
  local sample = body(0)
  local full = wrk.format("POST", "/ingest", nil, sample)
  head = full:sub(1, #full - #sample)
end

request = function()
  counter = counter + 1
  return head .. body(counter)
end
