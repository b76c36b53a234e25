-- The HTTP ceiling: GET BENCH_PATH on an nginx that answers a fixed body (the size of the
-- scenario's real answer), with the same request headers as the scenarios.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local bench = require("common")
setup, done = bench.setup, bench.done

function init(args)
  bench.init_thread()
  local reqs = {}
  for i = 1, 1024 do
    reqs[i] = wrk.format("GET", os.getenv("BENCH_PATH"), bench.auth_headers())
  end
  request = bench.cycle(reqs)
end
