-- wrk's script for every web measurement:
--
--   wrk -t1 -c16 -d10s -s requests.lua http://127.0.0.1:PORT/health -- MODE [IDS_FILE] [close]
--
-- MODE "deposit": POST /accounts/<id>/deposit {"amount": 1} to a random account
-- MODE "read":    GET /accounts/<id> of a random account
-- MODE "get":     GET the URL's own path (the generator's ceiling, /health)
-- IDS_FILE holds one account id per line. "close": every request asks the server
-- to close its connection after answering, so that each is accepted anew, as
-- uWSGI's http-socket does anyway. At the end, one JSON line on stdout.

local ids = {}
local mode = "get"
local headers = { ["Content-Type"] = "application/json" }
local read_headers = {}
local deposit_body = '{"amount": 1}'

local function read_ids(path)
  for line in io.lines(path) do
    if #line > 0 then
      ids[#ids + 1] = line
    end
  end
  if #ids == 0 then
    error("no account ids in " .. path)
  end
end

function init(args)
  mode = args[1] or "get"
  for i = 2, #args do
    if args[i] == "close" then
      headers["Connection"] = "close"
      read_headers["Connection"] = "close"
    else
      read_ids(args[i])
    end
  end
  math.randomseed(os.time())
end

function request()
  if mode == "deposit" then
    local id = ids[math.random(#ids)]
    return wrk.format("POST", "/accounts/" .. id .. "/deposit", headers, deposit_body)
  elseif mode == "read" then
    return wrk.format("GET", "/accounts/" .. ids[math.random(#ids)], read_headers)
  end
  return wrk.format("GET", nil, read_headers)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, '
      .. '"timeout": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d}\n',
    summary.requests, summary.duration, errors.connect, errors.read, errors.write, errors.status,
    errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
  ))
end
