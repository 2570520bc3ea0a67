-- lua5.4 run_reaper.lua SCENARIO.lua OUT.json: build a project in the fake REAPER, run the steps
-- (REAPER actions from bridges/daw/reaper/, each in a fresh `require` as REAPER runs every script
-- in a new Lua state; take switches; note edits), then write the recorded project as JSON.
local here = arg[0]:match("^(.*[/\\])") or "./"
local F = dofile(here .. "reaper_fake.lua")
reaper = F.api
local sc = dofile(arg[1])
F.setup(sc)
for k, v in pairs(sc.ext or {}) do F.ext[k] = v end
F.inputs = sc.inputs

local function t(qn) return reaper.TimeMap2_QNToTime(0, qn) end
for _, it in ipairs(sc.items) do
  local item = F.add_item({name = "track 1"}, t(it.pos_qn), t(it.pos_qn + it.len_qn) - t(it.pos_qn))
  local take = F.add_take(item, true)
  for _, n in ipairs(it.notes) do
    F.add_note(take, (n.qn - it.pos_qn) * F.ppq, (n.qn + n.dur - it.pos_qn) * F.ppq, n.chan, n.pitch, n.vel)
  end
end
if sc.time_selection_qn then F.time_selection = {t(sc.time_selection_qn[1]), t(sc.time_selection_qn[2])} end

for _, step in ipairs(sc.steps) do
  local kind = step[1]
  if kind == "select" then
    F.selected_items = {F.items[step[2]]}
  elseif kind == "activate" then  -- the musician flips to take step[3] of item step[2]
    F.items[step[2]].active = step[3]
  elseif kind == "transpose" then  -- and edits it: note step[4] of that take up step[5] semitones
    local n = F.items[step[2]].takes[step[3]].notes[step[4]]
    n.pitch = n.pitch + step[5]
  elseif kind == "action" then
    package.loaded.musegen = nil
    F.script = sc.scripts .. step[2]
    local before = #F.undo
    dofile(F.script)
    F.run_deferred(sc.timeout_s or 300)
    F.log[#F.log + 1] = "-- after " .. step[2] .. ": " .. (#F.undo - before) .. " undo entries"
  else
    error("unknown step " .. tostring(kind))
  end
end

-- ------------------------------------------------------------------ JSON out
local function enc(v)
  local ty = type(v)
  if ty == "nil" then return "null"
  elseif ty == "boolean" then return tostring(v)
  elseif ty == "number" then
    if v == math.floor(v) and math.abs(v) < 2^53 then return string.format("%d", v) end
    return string.format("%.17g", v)
  elseif ty == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  end
  if #v > 0 or next(v) == nil then
    local out = {}
    for i, x in ipairs(v) do out[i] = enc(x) end
    return "[" .. table.concat(out, ",") .. "]"
  end
  local out = {}
  for k, x in pairs(v) do
    if type(x) ~= "function" and k ~= "item" then out[#out + 1] = enc(tostring(k)) .. ":" .. enc(x) end
  end
  return "{" .. table.concat(out, ",") .. "}"
end

local items = {}
for i, item in ipairs(F.items) do
  local takes = {}
  for j, take in ipairs(item.takes) do
    takes[j] = {notes = take.notes, texts = take.texts, info = take.info, has_source = take.source ~= nil}
  end
  items[i] = {pos = item.pos, len = item.len, active = item.active, takes = takes}
end
local f = assert(io.open(arg[2], "w"))
f:write(enc({items = items, inserted = F.inserted, undo = F.undo, outside_undo = F.outside_undo,
             execs = F.execs, messages = F.messages, ext = F.ext, log = F.log, dialog = F.dialog}))
f:close()
