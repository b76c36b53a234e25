-- GET /availability/grid?date=…&limit=200: the first 200 rooms of the day grid (every active
-- room's local day and busy intervals), a random day of the seeded two years.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local bench = require("common")
setup, done = bench.setup, bench.done

function init(args)
  bench.init_thread()
  local d = bench.data
  local reqs = {}
  for i = 1, 4096 do
    local path = string.format("/availability/grid?date=%s&limit=200",
                               d.dates[math.random(1, #d.dates)])
    reqs[i] = wrk.format("GET", path, bench.auth_headers())
  end
  request = bench.cycle(reqs)
end
