-- GET /reservations?limit=20 as a random employee (their own confirmed reservations).
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local bench = require("common")
setup, done = bench.setup, bench.done

function init(args)
  bench.init_thread()
  local reqs = {}
  for i = 1, 4096 do
    reqs[i] = wrk.format("GET", "/reservations?limit=20", bench.auth_headers())
  end
  request = bench.cycle(reqs)
end
