-- wrk script for bench/throughput.py: POST every delivery of a pool file exactly once, then stop.
-- Pool file: one delivery a line, "<X-Hub-Signature-256 value> <JSON body>". Each wrk thread
-- takes every n-th line, so no two threads send the same delivery, and none is sent twice.
-- Usage: wrk -t <n> -c <c> -d <cap> -s bench/post.lua <url> -- <pool file> <n> <marker prefix>
-- Each thread touches "<marker prefix>start-<id>" when it sends its first delivery and
-- "<marker prefix>done-<id>" when the last of its deliveries is answered, and stops; the harness
-- reads the markers' times and interrupts wrk (SIGINT) once every thread is done.
-- While a thread waits for its last answers, its other connections send a request line gunicorn
-- refuses itself (400, "BENCHSTOP"), never reaching the app: a connection left open and idle would
-- hold a sync worker, which reads a connection it accepted until a request comes, and stall the
-- answers behind it. (bench/throughput.py runs one wrk thread, so no thread waits on another.)
-- Besides wrk's summary it prints "Answered: <2xx> ok, <503> rejected, <other> failed".

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local queue = {}
local sent = 0
local verified = false
local prefix = ""
local finished = false
local SENTINEL = "BENCHSTOP\r\n\r\n"
ok, rejected, failed = 0, 0, 0 -- globals, so done() can read them from each thread

local function touch(name)
  local marker = io.open(prefix .. name .. "-" .. id, "w")
  if marker then marker:close() end
end

function init(args)
  local pool, stride = args[1], tonumber(args[2])
  prefix = args[3]
  local line_number = 0
  for line in io.lines(pool) do
    if line_number % stride == id then
      local signature, body = line:match("^(%S+) (.*)$")
      local headers = {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = signature}
      queue[#queue + 1] = wrk.format("POST", nil, headers, body)
    end
    line_number = line_number + 1
  end
  if #queue == 0 then touch("start"); touch("done"); finished = true end
end

function request()
  -- wrk calls request() once on thread 0 before the load, only to check it: send nothing for it
  if id == 0 and not verified then
    verified = true
    return queue[1] or SENTINEL
  end
  if sent >= #queue then
    return SENTINEL
  end
  if sent == 0 then touch("start") end
  sent = sent + 1
  return queue[sent]
end

function response(status, headers, body)
  if status == 400 and body and body:find("BENCHSTOP", 1, true) then
    return
  end
  if status >= 200 and status < 300 then
    ok = ok + 1
  elseif status == 503 then
    rejected = rejected + 1
  else
    failed = failed + 1
  end
  if not finished and ok + rejected + failed == #queue then
    finished = true
    touch("done")
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local totals = {ok = 0, rejected = 0, failed = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  io.write(string.format("Answered: %d ok, %d rejected, %d failed\n", totals.ok, totals.rejected, totals.failed))
end
