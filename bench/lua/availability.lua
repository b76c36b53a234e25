-- GET /availability?room_id=…&date=…: a random room, a random day of the seeded two years.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local bench = require("common")
setup, done = bench.setup, bench.done

function init(args)
  bench.init_thread()
  local d = bench.data
  local reqs = {}
  for i = 1, 4096 do
    local path = string.format("/availability?room_id=%d&date=%s", math.random(1, d.rooms),
                               d.dates[math.random(1, #d.dates)])
    reqs[i] = wrk.format("GET", path, bench.auth_headers())
  end
  request = bench.cycle(reqs)
end
