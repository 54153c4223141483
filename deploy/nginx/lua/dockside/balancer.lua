-- dockside: the request side of dynamic upstreams. Every worker, old (after a reload) or new,
-- reads the same instance sets from the shared dict `dockside_sets`, so a pushed change is seen
-- by all of them at once, without a reload.
--   access(name)   503 + Retry-After when the upstream has no instance (after waiting, bounded,
--                  for the first push into a freshly started nginx)
--   balance(name)  balancer_by_lua: smooth weighted round-robin; a retry (nginx retries only
--                  idempotent requests, and any request whose connection failed) goes to a peer
--                  not tried yet, and a peer that failed is skipped by every worker for a short
--                  while; 3 tries, and one more after each connection that failed (up to 8)
--   log(name)      log_by_lua: per-instance requests, non-2xx and upstream time (dict `dockside_stats`)

local balancer = require("ngx.balancer")
local sets = require("dockside.sets")

local M = {}

local shared = ngx.shared.dockside_sets
local stats = ngx.shared.dockside_stats
local down_for = 2 -- seconds a failed peer is skipped
local tries = 3 -- tries per request (more_tries + 1), for any kind of failure
-- After a try that failed at the connection (refused, reset, timed out: nginx's "error" and
-- "timeout", not an upstream's 502/503/504) one more try on an untried peer, up to this many in
-- all (nginx.conf's proxy_next_upstream_tries must allow it). nginx still retries a request it
-- had sent only if idempotent; one whose connect failed never reached an instance, so it goes on
-- whatever its method. It matters when many
-- instances leave at once and the edge hears of it late: web 40→3 on a busy 2-core machine left
-- the leaving instances in the set 2–3 s after their SIGTERM, past the demo's 1 s drain, and
-- 3 tries in a row could all meet instances that had closed (test/e2e/lab-scale-40.test.ts).
local max_tries_after_failed_connections = 8
local cache = {} -- per worker: name -> { v = version, peers = { ... } }

local function current(name)
  local v = shared:get("v:" .. name)
  if not v then return nil end
  local c = cache[name]
  if c and c.v == v then return c end
  local stored = shared:get("s:" .. name)
  if not stored then return nil end
  local peers = sets.decode(stored)
  -- keep the round-robin position of peers that stay
  local old = {}
  if c then for _, p in ipairs(c.peers) do old[p.key] = p end end
  for _, p in ipairs(peers) do
    local o = old[p.key]
    p.cw = (o and o.weight == p.weight) and o.cw or 0
  end
  c = { v = v, peers = peers }
  cache[name] = c
  return c
end

-- A freshly started nginx (a restart, not a reload: shared dicts survive reloads) has no set
-- until the templater's first push, a few ms later. Requests arriving in that window wait for it
-- (bounded) instead of getting a 503 for a service that has instances.
local first_push_wait = 3 -- seconds

function M.access(name)
  local c = current(name)
  if c and #c.peers > 0 then return end
  if not shared:get("version") then
    local waited = 0
    while not shared:get("version") and waited < first_push_wait do
      ngx.sleep(0.02)
      waited = waited + 0.02
    end
    c = current(name)
    if c and #c.peers > 0 then return end
  end
  ngx.status = 503
  ngx.header["Retry-After"] = "1"
  ngx.header["Content-Type"] = "application/json"
  ngx.say('{"error":"no healthy instance","service":"', name:sub(5), '"}')
  return ngx.exit(503)
end

-- skip_down: also skip peers any worker saw fail lately, and peers on a host (address) that
-- failed during this request: a host that vanished takes all its instances with it, and in
-- published mode they share its address, so a retry goes to another host first.
local function pick(peers, tried, skip_down, failed_hosts)
  local best, total = nil, 0
  for i = 1, #peers do
    local p = peers[i]
    if not tried[p.key] and not (skip_down and (failed_hosts[p.host] or shared:get("d:" .. p.key))) then
      p.cw = p.cw + p.weight
      total = total + p.weight
      if not best or p.cw > best.cw then best = p end
    end
  end
  if best then best.cw = best.cw - total end
  return best
end

function M.balance(name)
  local ctx = ngx.ctx
  local c = current(name)
  if not c or #c.peers == 0 then return ngx.exit(503) end
  local tried = ctx.dockside_tried
  local failed_hosts = ctx.dockside_failed_hosts
  if not tried then
    tried = {}
    failed_hosts = {}
    ctx.dockside_tried = tried
    ctx.dockside_failed_hosts = failed_hosts
    ctx.dockside_tries = 1
    local more = math.min(#c.peers, tries) - 1
    if more > 0 then balancer.set_more_tries(more) end
  else
    ctx.dockside_tries = ctx.dockside_tries + 1
    local state = balancer.get_last_failure()
    if state == "failed" and ctx.dockside_last then
      shared:set("d:" .. ctx.dockside_last, true, down_for)
      if ctx.dockside_last_host then failed_hosts[ctx.dockside_last_host] = true end
      -- this try, and one more if it fails too, while untried peers are left
      if ctx.dockside_tries < math.min(#c.peers, max_tries_after_failed_connections) then
        balancer.set_more_tries(1)
      end
    end
  end
  local p = pick(c.peers, tried, true, failed_hosts) or pick(c.peers, tried, false, failed_hosts)
  if not p then return ngx.exit(502) end
  tried[p.key] = true
  ctx.dockside_last = p.key
  ctx.dockside_last_host = p.host
  local ok, err = balancer.set_current_peer(p.host, p.port)
  if not ok then
    ngx.log(ngx.ERR, "dockside: cannot use peer ", p.key, ": ", err)
    return ngx.exit(500)
  end
end

local function add(key, n)
  local _, err = stats:incr(key, n, 0)
  if err then ngx.log(ngx.WARN, "dockside stats: ", err) end
end

-- $upstream_addr / $upstream_status / $upstream_response_time list every try: "a, b" (", " between
-- tries; " : " between internal redirects).
function M.log(name)
  local addrs = ngx.var.upstream_addr
  if not addrs then return end
  local codes, times = {}, {}
  for s in (ngx.var.upstream_status or ""):gmatch("[^,:%s]+") do codes[#codes + 1] = s end
  for t in (ngx.var.upstream_response_time or ""):gmatch("[^,:%s]+") do times[#times + 1] = t end
  local i = 0
  for addr in addrs:gmatch("[^,%s]+") do
    i = i + 1
    if addr ~= ":" then
      local key = name .. " " .. addr
      add("r " .. key, 1)
      local code = tonumber(codes[i])
      if not code or code < 200 or code > 299 then add("e " .. key, 1) end
      local t = tonumber(times[i])
      if t then add("t " .. key, t) end
    end
  end
end

return M
