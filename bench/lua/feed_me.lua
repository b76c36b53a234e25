-- GET /calendars/me.ics?token=…: a random employee's own feed, with the feed token bench.py
-- seeded for them (43 digits: feed_token() in bench.py).  No bearer: the token authenticates.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local bench = require("common")
setup, done = bench.setup, bench.done

function init(args)
  bench.init_thread()
  local d = bench.data
  local reqs = {}
  for i = 1, 4096 do
    local uid = d.uids[math.random(1, #d.uids)]
    reqs[i] = wrk.format("GET", string.format("/calendars/me.ics?token=%043d", uid))
  end
  request = bench.cycle(reqs)
end
