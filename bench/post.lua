-- wrk script for bench/throughput.py: POST pre-signed deliveries from a pool file, in turn.
-- Pool file: one delivery a line, "<X-Hub-Signature-256 value> <JSON body>". Each wrk thread
-- takes every n-th line, so no two threads send the same delivery.
-- Usage: wrk -t <n> ... -s bench/post.lua <url> -- <pool file> <n>
-- Besides wrk's summary it prints "Rejected with 503: <count>" (the app's back-pressure).

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local queue = {}
local position = 0
rejected = 0 -- global, so done() can read it from each thread

function init(args)
  local pool, stride = args[1], tonumber(args[2])
  local line_number = 0
  for line in io.lines(pool) do
    if line_number % stride == id then
      local signature, body = line:match("^(%S+) (.*)$")
      local headers = {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = signature}
      queue[#queue + 1] = wrk.format("POST", nil, headers, body)
    end
    line_number = line_number + 1
  end
end

function request()
  position = position % #queue + 1
  return queue[position]
end

function response(status, headers, body)
  if status == 503 then
    rejected = rejected + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("rejected")
  end
  io.write(string.format("Rejected with 503: %d\n", total))
end
