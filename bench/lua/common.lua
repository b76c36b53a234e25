-- Shared by the bench scenarios (wrk 4, LuaJIT).  Each wrk thread loads the scenario script in
-- its own Lua state; setup() and done() run in the main state.
--   BENCH_DATA     a Lua file written by bench.py: tokens, user ids, room counts, dates
--   BENCH_THREADS  wrk's -t (slot numbering of the create scenarios); with several wrk at once
--                  (one per replica, make bench REPLICAS=N) their threads together
--   BENCH_TID_BASE the first thread number of this wrk among them [0]
local M = {}

M.data = dofile(os.getenv("BENCH_DATA"))

local threads = {}

-- Main state: numbers the threads (tid BENCH_TID_BASE, +1, …) and keeps them for done().
local tid_base = tonumber(os.getenv("BENCH_TID_BASE") or "0")
function M.setup(thread)
  thread:set("tid", tid_base + #threads)
  threads[#threads + 1] = thread
end

-- Thread state: a random stream per thread, the same from run to run.
function M.init_thread()
  math.randomseed(4242 + 7919 * (tid or 0))
  codes = {}
end

function M.token()
  local d = M.data
  local i = math.random(1, #d.tokens)
  return d.tokens[i], d.uids[i]
end

function M.auth_headers(extra)
  local h = { Authorization = "Bearer " .. M.token() }
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

-- request() cycling through prebuilt requests (GET scenarios: no per-request Lua work).
function M.cycle(reqs)
  local i, n = 0, #reqs
  return function()
    i = i % n + 1
    return reqs[i]
  end
end

-- response(): counts statuses per thread (only scenarios that must tell 201 from 409 use it).
function M.count_response(status)
  codes[status] = (codes[status] or 0) + 1
end

-- Main state: one line "BENCH_JSON {…}" that bench.py parses.
function M.done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local c = t:get("codes")
    if type(c) == "table" then
      for k, v in pairs(c) do merged[k] = (merged[k] or 0) + v end
    end
  end
  local parts = {}
  for k, v in pairs(merged) do parts[#parts + 1] = string.format('"%d":%d', k, v) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d},"codes":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, table.concat(parts, ",")))
end

return M
