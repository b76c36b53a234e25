-- GET /rooms with filters: min_capacity 2/4/6/8, one piece of equipment, active rooms, 20 a page.
-- The same parameters as bench/sql/room_list.pgbench.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local bench = require("common")
setup, done = bench.setup, bench.done

function init(args)
  bench.init_thread()
  local reqs = {}
  for i = 1, 4096 do
    local path = string.format("/rooms?min_capacity=%d&equipment=%s&active=true&limit=20",
                               2 * math.random(1, 4), bench.data.equipment)
    reqs[i] = wrk.format("GET", path, bench.auth_headers())
  end
  request = bench.cycle(reqs)
end
