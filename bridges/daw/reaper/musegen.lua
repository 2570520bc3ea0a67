-- musegen.lua: the logic behind the musegen_*.lua REAPER actions (stock REAPER Lua, no extension).
--
-- REAPER's Lua has no sockets, so every action writes the selected item's notes to a small text
-- file, starts `musegen client ...` with reaper.ExecProcess (no wait), and polls with
-- reaper.defer until the client has written its answer; then it puts each take into the project
-- as a REAPER take, in one undo block. See docs/daw.md (REAPER) for the set-up and the formats.
--
-- Positions: a note the server returns is (bar, beats into the bar). Bar b of a take is placed on
-- the project's own measure (origin + b) from REAPER's tempo map (TimeMap_GetMeasureInfo), so takes
-- land bar-exact whatever the tempo and wherever the time signature changes.

local M = {}
M.SECTION = "musegen"
M.PPQ_FALLBACK = 960
M.POLL_TIMEOUT_S = 600

-- settings: name, caption, default (GetUserInputs takes comma-separated captions and values)
M.SETTINGS = {
  {"style", "style (empty: none)", ""},
  {"bars", "bars to continue", "8"},
  {"variations", "variations", "4"},
  {"temperature", "temperature", "1.0"},
  {"styles", "blend mix (a=0.7 b=0.3)", ""},
  {"morph_from", "morph from style", ""},
  {"morph_to", "morph to style", ""},
  {"port", "server OSC port", "9000"},
  {"command", "musegen command", "musegen"},
}

function M.get(name)
  if reaper.HasExtState(M.SECTION, name) then return reaper.GetExtState(M.SECTION, name) end
  for _, s in ipairs(M.SETTINGS) do if s[1] == name then return s[3] end end
  return ""
end

function M.settings_dialog()
  local captions, values = {}, {}
  for i, s in ipairs(M.SETTINGS) do captions[i] = s[2]; values[i] = M.get(s[1]) end
  local ok, csv = reaper.GetUserInputs("musegen settings", #M.SETTINGS,
                                       table.concat(captions, ",") .. ",extrawidth=200",
                                       table.concat(values, ","))
  if not ok then return false end
  local i = 1
  for v in (csv .. ","):gmatch("([^,]*),") do
    if M.SETTINGS[i] then reaper.SetExtState(M.SECTION, M.SETTINGS[i][1], v, true) end
    i = i + 1
  end
  return true
end

local function msg(text) reaper.ShowConsoleMsg("musegen: " .. text .. "\n") end
M.msg = msg

local function fail(text)
  reaper.ShowMessageBox(text, "musegen", 0)
  return nil
end

-- ------------------------------------------------------------------ time map
function M.measure_of_time(t)  -- 0-based measure index containing project time t
  local _, measure = reaper.TimeMap2_timeToBeats(0, t)
  return math.floor(measure)
end

function M.measure_info(measure)  -- qn_start, qn_end, num, den, tempo of a 0-based measure
  local _, qn_start, qn_end, num, den, tempo = reaper.TimeMap_GetMeasureInfo(0, measure)
  return qn_start, qn_end, num, den, tempo
end

function M.measure_qn(measure) return (M.measure_info(measure)) end

-- ------------------------------------------------------------------ notes of a take
-- notes of a MIDI take as {pitch, vel, start, dur, chan} in quarter notes from origin_qn
function M.read_take(take, origin_qn)
  local notes = {}
  local _, count = reaper.MIDI_CountEvts(take)
  for i = 0, count - 1 do
    local _, _, muted, s, e, chan, pitch, vel = reaper.MIDI_GetNote(take, i)
    if not muted then
      local qs = reaper.MIDI_GetProjQNFromPPQPos(take, s)
      local qe = reaper.MIDI_GetProjQNFromPPQPos(take, e)
      notes[#notes + 1] = {pitch = pitch, vel = vel, start = qs - origin_qn, dur = qe - qs, chan = chan}
    end
  end
  table.sort(notes, function(a, b)
    if a.start ~= b.start then return a.start < b.start end
    return a.pitch < b.pitch
  end)
  return notes
end

-- a short fingerprint of a take's notes (in PPQ), to tell an edited take from the one generated
function M.signature(take)
  local h = 2166136261
  local _, count = reaper.MIDI_CountEvts(take)
  for i = 0, count - 1 do
    local _, _, muted, s, e, chan, pitch, vel = reaper.MIDI_GetNote(take, i)
    local text = string.format("%d:%d:%d:%d:%d:%s;", math.floor(s + 0.5), math.floor(e + 0.5),
                               chan, pitch, vel, tostring(muted))
    for c in text:gmatch(".") do h = ((h ~ c:byte()) * 16777619) & 0xffffffff end
  end
  return string.format("%d-%08x", count, h)
end

function M.write_notes(path, notes, tempo, num, den)
  local f = assert(io.open(path, "w"))
  f:write("musegen-notes 1\n", string.format("tempo %.6f\n", tempo),
          string.format("time_signature %d/%d\n", num, den))
  for _, n in ipairs(notes) do
    f:write(string.format("note %d %d %.6f %.6f %d\n", n.pitch, n.vel, n.start, n.dur, n.chan))
  end
  f:close()
end

-- ------------------------------------------------------------------ the client
function M.exchange_dir()
  local sep = package.config:sub(1, 1)
  local dir = reaper.GetResourcePath() .. sep .. "Data" .. sep .. "musegen"
  reaper.RecursiveCreateDirectory(dir, 0)
  return dir .. sep
end

local function quote(s)
  s = tostring(s)
  if s:match('^[%w%._/:=+-]+$') then return s end
  return '"' .. s:gsub('"', '\\"') .. '"'
end

-- start `musegen client OP params...`; on_result(result) runs (deferred) once its answer is there
function M.start(op, params, opts, on_result)
  local dir = M.exchange_dir()
  local stamp = string.format("%d-%d", os.time(), math.floor(reaper.time_precise() * 1000) % 1000000)
  local out = dir .. op .. "-" .. stamp .. ".result"
  local words = {M.get("command"), "client", quote(op)}  -- the command as typed (quote a path with spaces)
  for _, p in ipairs(params) do words[#words + 1] = quote(p) end
  words[#words + 1] = "--port " .. quote(M.get("port"))
  if opts.notes then words[#words + 1] = "--in " .. quote(opts.notes) end
  if opts.session then words[#words + 1] = "--session-dir " .. quote(opts.session) end
  words[#words + 1] = "--out " .. quote(out)
  local cmd = table.concat(words, " ")
  reaper.ExecProcess(cmd, -2)  -- no wait: REAPER stays responsive while the model works
  local t0 = reaper.time_precise()
  local function poll()
    local f = io.open(out, "r")
    if f then
      local text = f:read("a")
      f:close()
      os.remove(out)
      if opts.notes then os.remove(opts.notes) end
      local r = M.parse_result(text)
      if r.error then return fail("musegen " .. op .. ": " .. r.error) end
      return on_result(r)
    end
    if reaper.time_precise() - t0 > M.POLL_TIMEOUT_S then
      return fail("musegen " .. op .. ": no answer after " .. M.POLL_TIMEOUT_S .. " s. Is `musegen serve` "
                  .. "running on port " .. M.get("port") .. "? Command: " .. cmd)
    end
    reaper.defer(poll)
  end
  reaper.defer(poll)
end

function M.parse_result(text)
  local r = {takes = {}, lines = {}, ok = false}
  for line in text:gmatch("[^\n]+") do
    local kind, rest = line:match("^(%S+)%s*(.*)$")
    if kind == "take" then
      local index, id, bars, num, den, tempo, path = rest:match("^(%d+) (%S+) (%d+) (%d+)/(%d+) (%S+) (.*)$")
      r.takes[#r.takes + 1] = {index = tonumber(index), id = id, bars = tonumber(bars), num = tonumber(num),
                               den = tonumber(den), tempo = tonumber(tempo), path = path, notes = {}}
    elseif kind == "note" then
      local w = {}
      for x in rest:gmatch("%S+") do w[#w + 1] = x end
      local t = r.takes[#r.takes]
      t.notes[#t.notes + 1] = {bar = tonumber(w[2]), offset = tonumber(w[3]), dur = tonumber(w[4]),
                               pitch = tonumber(w[5]), vel = tonumber(w[6]), chan = tonumber(w[7]) % 16,
                               syllable = w[8] and w[8]:gsub("_", " ")}
    elseif kind == "line" then
      r.lines[#r.lines + 1] = rest
    elseif kind == "input_bars" then
      r.input_bars = tonumber(rest)
    elseif kind == "ok" then
      r.ok = true
    elseif kind == "error" then
      r.error = rest
    elseif kind ~= "musegen-result" then
      r[kind] = rest
    end
  end
  if not r.ok and not r.error then r.error = "incomplete answer from musegen client" end
  return r
end

-- ------------------------------------------------------------------ placing takes
local function set_take_info(take, result_take, label)
  reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", "musegen " .. result_take.id .. " " .. label, true)
  reaper.GetSetMediaItemTakeInfo_String(take, "P_EXT:musegen_take", result_take.id, true)
end

local function new_midi_take(item)
  local take = reaper.AddTakeToMediaItem(item)
  reaper.SetMediaItemTake_Source(take, reaper.PCM_Source_CreateFromType("MIDI"))
  return take
end

-- the notes of one result take into a REAPER take, bar b on project measure (first_measure + b)
function M.insert_notes(take, notes, first_measure)
  local qn_of = {}
  for _, n in ipairs(notes) do
    local m = first_measure + n.bar
    qn_of[m] = qn_of[m] or M.measure_qn(m)
    local qs = qn_of[m] + n.offset
    local ps = reaper.MIDI_GetPPQPosFromProjQN(take, qs)
    local pe = reaper.MIDI_GetPPQPosFromProjQN(take, qs + n.dur)
    reaper.MIDI_InsertNote(take, false, false, ps, pe, n.chan, n.pitch, n.vel, true)
    if n.syllable then reaper.MIDI_InsertTextSysexEvt(take, false, false, ps, 5, n.syllable) end
  end
  reaper.MIDI_Sort(take)
end

-- after_input: a new item right after the input's last bar, one take per result take;
-- at_input: new takes of the selected item (the whole clip, bar 0 = the item's first measure)
function M.place(r, src, label)
  local first = src.origin_measure + (r.placement == "after_input" and r.input_bars or 0)
  local bars = 1
  for _, t in ipairs(r.takes) do bars = math.max(bars, t.bars) end
  local t0 = reaper.TimeMap2_QNToTime(0, M.measure_qn(first))
  local t1 = reaper.TimeMap2_QNToTime(0, M.measure_qn(first + bars))
  local item, first_take
  if r.placement == "after_input" then
    item = reaper.CreateNewMIDIItemInProj(src.track, t0, t1, false)
    first_take = reaper.GetActiveTake(item)
  else
    item = src.item
    local pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
    local len = reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
    if t1 > pos + len then reaper.SetMediaItemInfo_Value(item, "D_LENGTH", t1 - pos) end
  end
  local active
  for i, t in ipairs(r.takes) do
    local take = (i == 1 and first_take) or new_midi_take(item)
    M.insert_notes(take, t.notes, first)
    set_take_info(take, t, string.format("(%s %d/%d)", label, i, #r.takes))
    reaper.GetSetMediaItemTakeInfo_String(take, "P_EXT:musegen_sig", M.signature(take), true)
    active = active or take
  end
  if active then reaper.SetActiveTake(active) end
  reaper.UpdateArrange()
  return item
end

-- ------------------------------------------------------------------ the selected item
function M.selected()
  if reaper.CountSelectedMediaItems(0) < 1 then return fail("select a MIDI item first") end
  local item = reaper.GetSelectedMediaItem(0, 0)
  local take = reaper.GetActiveTake(item)
  if not take or not reaper.TakeIsMIDI(take) then return fail("the selected item's active take is not MIDI") end
  local pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
  local measure = M.measure_of_time(pos)
  local qn, _, num, den, tempo = M.measure_info(measure)
  return {item = item, take = take, track = reaper.GetMediaItem_Track(item), origin_measure = measure,
          origin_qn = qn, num = num, den = den, tempo = tempo}
end

local function notes_file(src, take)
  local notes = M.read_take(take or src.take, src.origin_qn)
  if #notes == 0 then return fail("the item has no (unmuted) notes") end
  local path = M.exchange_dir() .. "in-" .. os.time() .. "-" .. math.random(1e6) .. ".notes"
  M.write_notes(path, notes, src.tempo, src.num, src.den)
  return path
end

local function add(params, key, value)
  if value ~= nil and value ~= "" then params[#params + 1] = key; params[#params + 1] = value end
end

-- one generating action: what to ask for, then the takes placed in one undo block
function M.generate(op)
  local src = M.selected()
  if not src then return end
  local params, label = {}, op
  if op == "arrange" then  -- a thin addition: the server's own defaults, whatever arrange accepts
    local path = notes_file(src)
    if not path then return end
    return M.start(op, params, {notes = path}, function(r)
      reaper.Undo_BeginBlock()
      M.place(r, src, label)
      reaper.Undo_EndBlock("musegen: arrange x" .. #r.takes, -1)
    end)
  end
  if op == "continue" or op == "blend" or op == "morph" then
    add(params, "bars", M.get("bars"))
    label = op .. " " .. M.get("bars") .. " bars"
  end
  if op ~= "morph" then add(params, "variations", M.get("variations")) end
  if op ~= "lyrics" then add(params, "temperature", M.get("temperature")) end
  if op == "continue" or op == "regenerate" then add(params, "style", M.get("style")) end
  if op == "blend" then
    if M.get("styles") == "" then return fail("blend: set a mix (a=0.7 b=0.3) in musegen settings") end
    add(params, "styles", M.get("styles"))
  end
  if op == "morph" then
    if M.get("morph_from") == "" or M.get("morph_to") == "" then
      return fail("morph: set 'morph from' and 'morph to' styles in musegen settings")
    end
    add(params, "from", M.get("morph_from"))
    add(params, "to", M.get("morph_to"))
  end
  if op == "regenerate" then
    local s, e = reaper.GetSet_LoopTimeRange(false, false, 0, 0, false)
    if e <= s then return fail("regenerate: make a time selection over the bars to regenerate") end
    local first = M.measure_of_time(s) - src.origin_measure + 1
    local last = M.measure_of_time(e - 1e-6) - src.origin_measure + 1
    if first < 1 or last < first then return fail("regenerate: the time selection is not over the item") end
    add(params, "bars", string.format("%d-%d", first, last))
    label = string.format("regenerate bars %d-%d", first, last)
  end
  local path = notes_file(src)
  if not path then return end
  msg(op .. " sent; the takes arrive in a few seconds")
  M.start(op, params, {notes = path}, function(r)
    reaper.Undo_BeginBlock()
    M.place(r, src, label)
    reaper.Undo_EndBlock("musegen: " .. label .. " x" .. #r.takes, -1)
    for _, line in ipairs(r.lines) do msg("lyrics " .. line) end
    msg(string.format("%s: %d takes (%s)", op, #r.takes, r.done or ""))
  end)
end

-- accept the active take; an edited one is sent back first (/musegen/edit) and that is accepted
function M.accept()
  if reaper.CountSelectedMediaItems(0) < 1 then return fail("select the item whose active take to accept") end
  local item = reaper.GetSelectedMediaItem(0, 0)
  local take = reaper.GetActiveTake(item)
  local _, id = reaper.GetSetMediaItemTakeInfo_String(take, "P_EXT:musegen_take", "", false)
  if not id or id == "" then return fail("the active take is not a musegen take") end
  local _, sig = reaper.GetSetMediaItemTakeInfo_String(take, "P_EXT:musegen_sig", "", false)
  local function accept_id(take_id, label)
    M.start("accept", {"take", take_id}, {}, function(r)
      reaper.Undo_BeginBlock()
      reaper.GetSetMediaItemTakeInfo_String(take, "P_EXT:musegen_take", take_id, true)
      reaper.GetSetMediaItemTakeInfo_String(take, "P_EXT:musegen_sig", M.signature(take), true)
      reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", "musegen " .. take_id .. " accepted" .. label, true)
      reaper.Undo_EndBlock("musegen: accept " .. take_id, -1)
      msg("accepted " .. take_id .. label)
    end)
  end
  if sig == M.signature(take) then return accept_id(id, "") end
  -- edited since musegen made it: the edit becomes a take whose parent is the generated one
  local pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
  local measure = M.measure_of_time(pos)
  local qn, _, num, den, tempo = M.measure_info(measure)
  local src = {take = take, origin_qn = qn, num = num, den = den, tempo = tempo}
  local path = notes_file(src, take)
  if not path then return end
  local session = reaper.GetExtState(M.SECTION, "session")
  if session == "" then return fail("edit: the session folder is not known yet; generate a take first") end
  M.start("edit", {"take", id}, {notes = path, session = session}, function(r)
    accept_id(r.takes[1].id, " (edit of " .. id .. ")")
  end)
end

function M.undo()
  M.start("undo", {}, {}, function(r)
    msg("undone in the session: " .. (r.undone or r.done or ""))
  end)
end

-- remember the server's session folder (for edits) from every answer that names it
local start = M.start
function M.start(op, params, opts, on_result)
  return start(op, params, opts, function(r)
    if r.session and r.session ~= "" then reaper.SetExtState(M.SECTION, "session", r.session, true) end
    return on_result(r)
  end)
end

return M
