-- GET /calendars/rooms/{id}.ics: a random room's busy times from 30 days back to 365 ahead.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local bench = require("common")
setup, done = bench.setup, bench.done

function init(args)
  bench.init_thread()
  local d = bench.data
  local reqs = {}
  for i = 1, 4096 do
    local path = string.format("/calendars/rooms/%d.ics", math.random(1, d.rooms))
    reqs[i] = wrk.format("GET", path, bench.auth_headers())
  end
  request = bench.cycle(reqs)
end
