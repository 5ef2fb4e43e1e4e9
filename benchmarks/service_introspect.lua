-- wrk script of benchmarks/service.py: POST /v1/sessions/introspect, a JSON body and the
-- service key in the Authorization header, rotating over many session tokens.
--
--   wrk -t2 -c50 -d10s -s benchmarks/service_introspect.lua http://127.0.0.1:PORT -- FILE [METHOD PATH]
--
-- FILE: first line the service key, then one session token a line (a file, so that neither
-- the key nor a token shows in a process list). METHOD PATH: another route, with the same
-- Authorization header: GET (no body: the floor) or POST (the same {"token": ...} bodies).
-- Every request is formatted once in init(); request() only hands the next one out. Each
-- thread starts at its own offset, so the threads do not walk the tokens in step.
-- done() prints one line that benchmarks/service.py reads: latency percentiles in
-- microseconds, requests, non-2xx answers and socket errors.

local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("thread_number", counter)
end

local prepared = {}
local position = 0

function init(args)
   local file = assert(io.open(args[1], "r"), "cannot open " .. tostring(args[1]))
   local key = file:read("*l")
   local tokens = {}
   for line in file:lines() do
      if #line > 0 then
         table.insert(tokens, line)
      end
   end
   file:close()
   local method = args[2] or "POST"
   local path = args[3] or "/v1/sessions/introspect"
   local auth = { ["Authorization"] = "Bearer " .. key }
   if method == "GET" then
      prepared[1] = wrk.format("GET", path, auth, nil)
   else
      auth["Content-Type"] = "application/json"
      for i, token in ipairs(tokens) do
         prepared[i] = wrk.format(method, path, auth, '{"token":"' .. token .. '"}')
      end
   end
   local number = thread_number or 1
   position = ((number - 1) * 7919) % #prepared  -- a prime stride apart
end

function request()
   position = position % #prepared + 1
   return prepared[position]
end

function done(summary, latency, requests)
   io.write(string.format(
      "CCBENCH p50_us=%d p90_us=%d p99_us=%d max_us=%d requests=%d non2xx=%d "
         .. "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read,
      summary.errors.write, summary.errors.timeout))
end
