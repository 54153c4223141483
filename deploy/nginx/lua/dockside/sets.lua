-- dockside: parsing and checking pushed instance sets. Pure (no nginx API), so every rule is
-- in one place. The templater checks the same rules before it pushes (core/instance-sets.ts);
-- nginx checks them again here, because the control endpoint must not trust its caller.
--
-- Body (text, one item per line, at most 64 KiB):
--   version <n>                                   first line; n: 1..2^53, above the live one
--   set <upstream> [<ip>:<port>:<weight> ...]     the whole instance set of one upstream
-- <upstream> is svc_<service name>; <ip> an IPv4 address or an IPv6 one in brackets;
-- <port> 1..65535; <weight> 1..100.

local M = {}

M.max_peers = 1000
M.max_sets = 2000

local function ipv4(s)
  local a, b, c, d = s:match("^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  if not a then return false end
  for _, o in ipairs({ a, b, c, d }) do
    if tonumber(o) > 255 or (#o > 1 and o:sub(1, 1) == "0") then return false end
  end
  return true
end

local function ipv6(s)
  if #s < 2 or #s > 45 or not s:match("^[0-9a-fA-F:.]+$") then return false end
  local _, colons = s:gsub(":", "")
  if colons < 2 or colons > 7 then return false end
  local _, doubles = s:gsub("::", "")
  if doubles > 1 or s:find(":::", 1, true) then return false end
  return true
end

local function int_in(s, lo, hi)
  if not s or not s:match("^%d+$") or #s > 16 then return nil end
  local n = tonumber(s)
  if n < lo or n > hi then return nil end
  return n
end

--- One peer word `ip:port:weight`; returns {host=, port=, weight=, key=} or nil, reason.
function M.peer(word)
  local host, port, weight
  if word:sub(1, 1) == "[" then
    host, port, weight = word:match("^%[([^%]]*)%]:([^:]*):([^:]*)$")
    if not host or not ipv6(host) then return nil, "not an IPv6 address in brackets: " .. word end
  else
    host, port, weight = word:match("^([^:]*):([^:]*):([^:]*)$")
    if not host or not ipv4(host) then return nil, "not an IPv4 address: " .. word end
  end
  local p = int_in(port, 1, 65535)
  if not p then return nil, "port not in 1-65535: " .. word end
  local w = int_in(weight, 1, 100)
  if not w then return nil, "weight not in 1-100: " .. word end
  local key = (word:sub(1, 1) == "[" and ("[" .. host .. "]") or host) .. ":" .. p
  return { host = host, port = p, weight = w, key = key }
end

function M.upstream_name(s)
  return s and #s <= 130 and s:match("^svc_[A-Za-z0-9][A-Za-z0-9_-]*$") ~= nil
end

--- Parses a whole body. Returns { version = n, sets = { [name] = "<peer words>" }, count = k }
--- or nil, reason (with the line number). Nothing is stored by this function.
function M.parse(body, live_version)
  if type(body) ~= "string" or body == "" then return nil, "empty body" end
  if #body > 65536 then return nil, "body larger than 64 KiB" end
  if body:find("[^\n\32-\126]") then return nil, "body holds a byte that is not printable ASCII" end
  local out, n, count = { sets = {} }, 0, 0
  for line in body:gmatch("([^\n]*)\n?") do
    n = n + 1
    if line ~= "" then
      if n == 1 then
        local v = line:match("^version (%d+)$")
        v = v and int_in(v, 1, 9007199254740991)
        if not v then return nil, "line 1: expected `version <n>`" end
        if live_version and v <= live_version then
          return nil, "line 1: version " .. v .. " is not above the live version " .. live_version
        end
        out.version = v
      else
        local words = {}
        for w in line:gmatch("%S+") do words[#words + 1] = w end
        if words[1] ~= "set" or not M.upstream_name(words[2]) then
          return nil, "line " .. n .. ": expected `set svc_<name> <ip>:<port>:<weight>...`"
        end
        if out.sets[words[2]] then return nil, "line " .. n .. ": " .. words[2] .. " given twice" end
        if #words - 2 > M.max_peers then return nil, "line " .. n .. ": more than " .. M.max_peers .. " peers" end
        local seen = {}
        for i = 3, #words do
          local p, why = M.peer(words[i])
          if not p then return nil, "line " .. n .. ": " .. why end
          if seen[p.key] then return nil, "line " .. n .. ": " .. p.key .. " given twice" end
          seen[p.key] = true
        end
        count = count + 1
        if count > M.max_sets then return nil, "more than " .. M.max_sets .. " sets" end
        out.sets[words[2]] = table.concat(words, " ", 3)
      end
    end
  end
  if not out.version then return nil, "line 1: expected `version <n>`" end
  out.count = count
  return out
end

--- A stored set ("<peer words>") as a list of peers (already checked when it was stored).
function M.decode(stored)
  local peers = {}
  for w in stored:gmatch("%S+") do
    local p = M.peer(w)
    if p then peers[#peers + 1] = p end
  end
  return peers
end

return M
