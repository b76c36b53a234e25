-- GET /rooms/{id}, a random room, a random employee.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local bench = require("common")
setup, done = bench.setup, bench.done

function init(args)
  bench.init_thread()
  local reqs = {}
  for i = 1, 4096 do
    reqs[i] = wrk.format("GET", "/rooms/" .. math.random(1, bench.data.rooms), bench.auth_headers())
  end
  request = bench.cycle(reqs)
end
