-- dockside: the control endpoint, on a listener only the templater reaches (loopback inside
-- the edge container, never the public port).
--   POST /sets      a push (see sets.lua); 200 with the live version read back from the shared
--                   dict once every set is stored (what any worker now reads), 4xx with one
--                   line saying why
--   GET  /version   the live version ("0" before the first push); with ?after=<n> it answers
--                   once the live version is above n, or after 10 s (a long poll: whoever waits
--                   for a push sees it within a millisecond without asking a thousand times)
--   GET  /stats     per-instance figures: "<upstream> <addr> <requests> <non2xx> <upstream seconds>"

local sets = require("dockside.sets")

local M = {}
local shared = ngx.shared.dockside_sets
local stats = ngx.shared.dockside_stats

local function refuse(status, why, what)
  ngx.status = status
  ngx.header["Content-Type"] = "text/plain"
  ngx.say("refused: ", why)
  ngx.log(ngx.WARN, "dockside control: ", what or "push", " refused: ", why)
  return ngx.exit(status)
end

local long_poll_seconds = 10

function M.push()
  if ngx.req.get_method() ~= "POST" then return refuse(405, "POST a body") end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then return refuse(413, "body missing or larger than the 64 KiB buffer") end
  local parsed, why = sets.parse(body, shared:get("version"))
  if not parsed then return refuse(400, why) end
  -- Store every set, then the version: a reader of the version sees every set of that push.
  for name, stored in pairs(parsed.sets) do
    if shared:get("s:" .. name) ~= stored or not shared:get("v:" .. name) then
      local ok, err = shared:safe_set("s:" .. name, stored)
      if not ok then return refuse(507, "shared dict full: " .. tostring(err)) end
      shared:set("v:" .. name, parsed.version)
    end
  end
  shared:set("version", parsed.version)
  ngx.status = 200
  ngx.header["Content-Type"] = "text/plain"
  -- Read back, not echoed: the templater takes this as the push's confirmation.
  ngx.say(shared:get("version") or 0)
end

function M.version()
  local after = ngx.var.arg_after
  if after ~= nil then
    local n = #after <= 16 and after:match("^%d+$") and tonumber(after)
    if not n then return refuse(400, "after: expected a whole number below 10^16", "version wait") end
    local deadline = ngx.now() + long_poll_seconds
    -- A worker that is exiting (a reload) answers at once rather than hold its exit up.
    while (shared:get("version") or 0) <= n and ngx.now() < deadline and not ngx.worker.exiting() do
      ngx.sleep(0.001)
    end
  end
  ngx.header["Content-Type"] = "text/plain"
  ngx.say(shared:get("version") or 0)
end

function M.stats()
  ngx.header["Content-Type"] = "text/plain"
  local rows = {}
  for _, key in ipairs(stats:get_keys(0)) do
    local kind, rest = key:match("^(%a) (.+)$")
    if kind then
      local row = rows[rest]
      if not row then
        row = { r = 0, e = 0, t = 0 }
        rows[rest] = row
      end
      row[kind] = stats:get(key) or 0
    end
  end
  local out = {}
  for k, row in pairs(rows) do
    out[#out + 1] = string.format("%s %d %d %.3f", k, row.r, row.e, row.t)
  end
  table.sort(out)
  ngx.say(table.concat(out, "\n"))
end

return M
