-- Shared by the CTMS benchmark scenarios (run by `bench/run.py`, not by hand).
-- Arguments after `--`: <token> <ids file> <emails file> <newsletter names, comma separated>.
local M = {}

local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
end

local function read_lines(path)
  local lines = {}
  if path == nil or path == "" then
    return lines
  end
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if line ~= "" then
      lines[#lines + 1] = line
    end
  end
  file:close()
  return lines
end

function M.init(args)
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919)
  M.token = args[1]
  M.ids = read_lines(args[2])
  M.emails = read_lines(args[3])
  M.newsletters = {}
  for name in string.gmatch(args[4] or "", "[^,]+") do
    M.newsletters[#M.newsletters + 1] = name
  end
  wrk.headers["Authorization"] = "Bearer " .. M.token
  wrk.headers["Accept"] = "application/json"
end

function M.pick(list)
  return list[math.random(#list)]
end

function M.random_case(text)
  return (text:gsub("%a", function(c)
    if math.random() < 0.5 then
      return c:upper()
    end
    return c:lower()
  end))
end

function M.urlencode(text)
  return (text:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

-- One machine-readable line that bench/run.py parses; latencies in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)
  ))
end

return M
