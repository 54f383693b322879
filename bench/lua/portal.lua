-- wrk script for the benchmark's single-endpoint steps (bench/run.py starts wrk with it).
--
-- BENCH_MODE picks what each request is:
--   get          GET the URL's path, with BENCH_COOKIE if set
--   request      POST /signin/ for a new address each time (CSRF cookie and token, Origin)
--   link_bound   GET a sign-in link with its browser's binding cookie (consumes it)
--   link_plain   GET one sign-in link without any cookie (consumes nothing)
--   confirm      POST /signin/confirm/ with a ticket cookie ("Sign in on this device")
--   peer_request POST allauth's "send me a code" form (the peer)
-- BENCH_FILE holds one line per request for link_bound ("token binding") and confirm
-- (ticket); each thread takes every n-th line and stops when its share runs out.
-- BENCH_DELAY_MS paces each connection (a pause before each request); 0 is flat out.
-- BENCH_EXPECT is a Lua pattern the Location header (or, without one, the status) must
-- match; requests that miss it are counted as "unexpected" in the JSON line done() prints.

local mode = os.getenv("BENCH_MODE") or "get"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local expect = os.getenv("BENCH_EXPECT") or ""
local csrf_cookie = os.getenv("BENCH_CSRF_COOKIE") or "csrftoken"
local csrf = os.getenv("BENCH_CSRF") or "benchbenchbenchbenchbenchbench12"
local origin = os.getenv("BENCH_ORIGIN") or ""
local binding_cookie = os.getenv("BENCH_BINDING_COOKIE") or ""
local ticket_cookie = os.getenv("BENCH_TICKET_COOKIE") or ""
local link_token = os.getenv("BENCH_TOKEN") or ""
local extra_cookie = os.getenv("BENCH_COOKIE") or ""

local threads = {}
local counter = 1

function setup(thread)
   thread:set("id", counter)
   thread:set("unexpected", 0)
   table.insert(threads, thread)
   counter = counter + 1
end

local lines = {}
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local position = 0
local sent = 0

function init(args)
   local file = os.getenv("BENCH_FILE")
   if file and file ~= "" then
      local n = 0
      for line in io.lines(file) do
         if n % nthreads == id - 1 then table.insert(lines, line) end
         n = n + 1
      end
   end
   unexpected = 0
   -- Addresses must differ between steps too (a repeated address meets its cool-down).
   stamp = os.time()
   math.randomseed(stamp * 100 + id)
end

function delay()
   return delay_ms
end

local function next_line()
   position = position + 1
   if position > #lines then
      wrk.thread:stop()
      return lines[#lines] or ""
   end
   return lines[position]
end

local function form_headers(cookie)
   return {["Content-Type"] = "application/x-www-form-urlencoded", ["Origin"] = origin,
           ["Cookie"] = cookie}
end

function request()
   sent = sent + 1
   if mode == "request" then
      local body = "csrfmiddlewaretoken=" .. csrf .. "&email=wrk" .. id .. "-" .. stamp .. "-" .. sent
         .. "-" .. math.random(1, 1000000000) .. "%40nobody.example&next=%2F"
      return wrk.format("POST", "/signin/", form_headers(csrf_cookie .. "=" .. csrf), body)
   elseif mode == "peer_request" then
      local body = "csrfmiddlewaretoken=" .. csrf .. "&email=nobody" .. id .. "-" .. stamp .. "-" .. sent
         .. "%40nobody.example"
      return wrk.format("POST", "/accounts/login/code/",
                        form_headers(csrf_cookie .. "=" .. csrf), body)
   elseif mode == "link_bound" then
      local token, binding = next_line():match("^(%S+) (%S+)$")
      return wrk.format("GET", "/signin/link/" .. (token or "x") .. "/",
                        {["Cookie"] = binding_cookie .. "=" .. (binding or "")})
   elseif mode == "link_plain" then
      return wrk.format("GET", "/signin/link/" .. link_token .. "/")
   elseif mode == "confirm" then
      local ticket = next_line()
      local cookie = csrf_cookie .. "=" .. csrf .. "; " .. ticket_cookie .. "=" .. ticket
      return wrk.format("POST", "/signin/confirm/", form_headers(cookie),
                        "csrfmiddlewaretoken=" .. csrf)
   end
   if extra_cookie ~= "" then
      return wrk.format("GET", nil, {["Cookie"] = extra_cookie})
   end
   return wrk.format("GET")
end

function response(status, headers, body)
   if expect == "" then return end
   local seen = headers["Location"] or headers["location"] or tostring(status)
   if not string.find(seen, expect) then unexpected = unexpected + 1 end
end

function done(summary, latency, requests)
   local missed = 0
   for _, thread in ipairs(threads) do missed = missed + (thread:get("unexpected") or 0) end
   local e = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, '
      .. '"unexpected": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout, missed))
end
