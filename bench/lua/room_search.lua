-- GET /availability/rooms: a one-hour window at 08:00-17:00 UTC of a random day of the seeded
-- two years (the seeded reservations' hours), capacity 2/4/6/8, one piece of equipment, 20
-- rooms.  The same parameters as bench/sql/room_search.pgbench.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local bench = require("common")
setup, done = bench.setup, bench.done

function init(args)
  bench.init_thread()
  local d = bench.data
  local reqs = {}
  for i = 1, 4096 do
    local date, hour = d.dates[math.random(1, #d.dates)], math.random(8, 17)
    local path = string.format(
      "/availability/rooms?start=%sT%02d:00:00Z&end=%sT%02d:00:00Z&capacity=%d&equipment=%s"
        .. "&limit=20", date, hour, date, hour + 1, 2 * math.random(1, 4), d.equipment)
    reqs[i] = wrk.format("GET", path, bench.auth_headers())
  end
  request = bench.cycle(reqs)
end
