-- wrk's script for the contention measurement: every connection deposits into one account.
--
--   wrk -t1 -c16 -d5s -s one_account.lua http://127.0.0.1:PORT/health -- ACCOUNT_ID
--
-- At the end, one JSON line on stdout, as requests.lua prints, with "statuses":
-- how many answers had each status (a 409 is a deposit that kept losing its race).

local path = nil
local headers = { ["Content-Type"] = "application/json" }
local body = '{"amount": 1}'
local threads = {}
statuses = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  if not args[1] then
    error("usage: ... -- ACCOUNT_ID")
  end
  path = "/accounts/" .. args[1] .. "/deposit"
end

function request()
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(counts) do
    parts[#parts + 1] = string.format('"%d": %d', status, count)
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, '
      .. '"timeout": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, errors.connect, errors.read, errors.write, errors.status,
    errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ", ")
  ))
end
