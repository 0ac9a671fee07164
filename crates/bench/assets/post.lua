-- Written by `stepwise bench serve`.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads, once = args[1], tonumber(args[2]), args[3] == "once"
  endpoint = args[4] or "/get_reward"
  bodies = {}
  local all = {}
  for line in io.lines(path) do all[#all + 1] = line end
  for i = id + 1, #all, nthreads do bodies[#bodies + 1] = all[i] end
  quota = once and #bodies or -1
  sent, got = 0, 0
end

function request()
  sent = sent + 1
  local body = bodies[((sent - 1) % #bodies) + 1]
  return wrk.format("POST", endpoint, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  got = got + 1
  if quota > 0 and got >= quota then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nSTEPWISE_WRK {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
