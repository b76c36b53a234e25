-- POST /reservations.
--   default: every request a distinct 15-minute slot.  Slot n (thread tid takes n = tid,
--     tid + threads, …) is room j + j/19 + 1 (j = n % active: rooms whose id is a multiple of 20
--     are inactive) at night (00:00-08:00 UTC, when the seeded grid is empty) of day
--     BENCH_RUNDAY + k/32 after BENCH_DAY0, quarter k % 32 (k = n / active): the mapping of
--     bench/sql/create.pgbench.
--   BENCH_STORM=1: every request the same slot (BENCH_STORM_ROOM at BENCH_STORM_START): one 201,
--     the rest 409.
--   BENCH_ATTENDEES=n (n > 0, the invitations measurement): each booking invites n employees
--     (the n after the organizer among the seeded users), in the rooms that hold them
--     (bench.data.invite_rooms, active, capacity > n) instead of every active room; slot n of
--     this run as above with those rooms.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local bench = require("common")
setup, done = bench.setup, bench.done

local function rfc3339(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

local function body(room, start, attendees)
  return string.format('{"room_id":%d,"start_time":"%s","end_time":"%s","purpose":"%s"%s}',
                       room, rfc3339(start), rfc3339(start + 900), os.getenv("BENCH_PURPOSE"),
                       attendees or "")
end

-- ',"attendees":[…]': the n employees after uid (seed_users.sql's addresses, user00001@… for
-- the first seeded user).
local function attendees(uid, n)
  local d, list = bench.data, {}
  for i = 1, n do
    list[i] = string.format('"user%05d@example.com"', (uid - d.uid_lo + i) % d.users + 1)
  end
  return ',"attendees":[' .. table.concat(list, ",") .. "]"
end

function response(status, headers, b)
  bench.count_response(status)
end

function init(args)
  bench.init_thread()
  local json = { ["Content-Type"] = "application/json" }
  if os.getenv("BENCH_STORM") == "1" then
    local reqs = {}
    local b = body(tonumber(os.getenv("BENCH_STORM_ROOM")),
                   tonumber(os.getenv("BENCH_STORM_START")))
    for i = 1, 1024 do
      reqs[i] = wrk.format("POST", "/reservations", bench.auth_headers(json), b)
    end
    request = bench.cycle(reqs)
    return
  end
  local nthreads = tonumber(os.getenv("BENCH_THREADS"))
  local active = bench.data.active
  local day0 = tonumber(os.getenv("BENCH_DAY0"))
  local runday = tonumber(os.getenv("BENCH_RUNDAY"))
  local invite = tonumber(os.getenv("BENCH_ATTENDEES") or "0")
  local rooms = bench.data.invite_rooms
  local count = 0
  request = function()
    local n = tid + nthreads * count
    count = count + 1
    if invite > 0 then
      local j, k = n % #rooms, math.floor(n / #rooms)
      local start = day0 + (runday + math.floor(k / 32)) * 86400 + (k % 32) * 900
      local token, uid = bench.token()
      local headers = { ["Content-Type"] = "application/json", Authorization = "Bearer " .. token }
      return wrk.format("POST", "/reservations", headers,
                        body(rooms[j + 1], start, attendees(uid, invite)))
    end
    local j, k = n % active, math.floor(n / active)
    local room = j + math.floor(j / 19) + 1
    local start = day0 + (runday + math.floor(k / 32)) * 86400 + (k % 32) * 900
    return wrk.format("POST", "/reservations", bench.auth_headers(json), body(room, start))
  end
end
