-- A recording fake of the part of REAPER's ReaScript API that bridges/daw/reaper/ uses, for
-- tests without REAPER (tests/test_daw_hosts.py). It keeps a project: one constant tempo, a list
-- of time-signature sections, items with takes whose notes are in PPQ from the item's start
-- (960 per quarter note, as REAPER's MIDI items). Every call that changes the project is recorded
-- with the undo-block depth it happened at, so a test can check "one undo point per action".
--
-- Signatures follow REAPER's API documentation (reaper.fm/sdk/reascript/reascripthelp.html):
-- measures are 0-based in TimeMap_GetMeasureInfo and TimeMap2_timeToBeats.

local F = {log = {}, undo = {}, depth = 0, deferred = {}, ext = {}, execs = {}, inserted = {},
           outside_undo = {}, messages = {}, inputs = nil, items = {}, selected_items = {},
           time_selection = {0, 0}, resource = "/tmp", ppq = 960}

local function changed(what)
  F.log[#F.log + 1] = what
  if F.depth == 0 then F.outside_undo[#F.outside_undo + 1] = what end
end

-- ---------------------------------------------------------------- the project's time map
function F.setup(p)
  F.tempo = p.tempo
  F.sections = p.sections  -- {{measure = 0, num = 4, den = 4}, {measure = 4, num = 3, den = 4}, ...}
  F.resource = p.resource
end

local function section_of(m)
  local s = F.sections[1]
  for _, x in ipairs(F.sections) do if x.measure <= m then s = x end end
  return s
end

local function measure_len_qn(m) local s = section_of(m); return s.num * 4 / s.den end

local function measure_start_qn(m)
  local qn = 0
  for i = 0, m - 1 do qn = qn + measure_len_qn(i) end
  return qn
end

local function qn_of_time(t) return t * F.tempo / 60 end
local function time_of_qn(qn) return qn * 60 / F.tempo end

local function measure_of_qn(qn)
  local m = 0
  while measure_start_qn(m + 1) <= qn + 1e-9 do m = m + 1 end
  return m
end

local reaper = {}
F.api = reaper

function reaper.TimeMap_GetMeasureInfo(proj, measure)
  local s = section_of(measure)
  local qs = measure_start_qn(measure)
  return time_of_qn(qs), qs, qs + measure_len_qn(measure), s.num, s.den, F.tempo
end

function reaper.TimeMap2_timeToBeats(proj, t)
  local qn = qn_of_time(t)
  local m = measure_of_qn(qn)
  local s = section_of(m)
  local beats = (qn - measure_start_qn(m)) * s.den / 4
  return beats, m, s.num, qn * s.den / 4, s.den
end

function reaper.TimeMap2_QNToTime(proj, qn) return time_of_qn(qn) end
function reaper.TimeMap2_timeToQN(proj, t) return qn_of_time(t) end

-- ---------------------------------------------------------------- items and takes
function F.add_item(track, pos_s, len_s)
  local item = {kind = "item", track = track, pos = pos_s, len = len_s, takes = {}, active = 0}
  F.items[#F.items + 1] = item
  item.index = #F.items
  return item
end

function F.add_take(item, with_source)
  local take = {kind = "take", item = item, notes = {}, texts = {}, info = {}, source = with_source and {type = "MIDI"} or nil}
  item.takes[#item.takes + 1] = take
  take.index = #item.takes
  if item.active == 0 then item.active = 1 end
  return take
end

function F.add_note(take, start_ppq, end_ppq, chan, pitch, vel)
  take.notes[#take.notes + 1] = {selected = false, muted = false, s = start_ppq, e = end_ppq, chan = chan, pitch = pitch, vel = vel}
end

function reaper.CountSelectedMediaItems(proj) return #F.selected_items end
function reaper.GetSelectedMediaItem(proj, i) return F.selected_items[i + 1] end
function reaper.GetActiveTake(item) return item.takes[item.active] end
function reaper.TakeIsMIDI(take) return take.source ~= nil and take.source.type == "MIDI" end
function reaper.GetMediaItem_Track(item) return item.track end
function reaper.GetMediaItemNumTakes(item) return #item.takes end
function reaper.GetMediaItemTake(item, i) return item.takes[i + 1] end

function reaper.GetMediaItemInfo_Value(item, key)
  if key == "D_POSITION" then return item.pos elseif key == "D_LENGTH" then return item.len end
  error("fake: GetMediaItemInfo_Value key " .. key)
end

function reaper.SetMediaItemInfo_Value(item, key, v)
  changed("SetMediaItemInfo_Value " .. key)
  if key == "D_POSITION" then item.pos = v elseif key == "D_LENGTH" then item.len = v
  else error("fake: SetMediaItemInfo_Value key " .. key) end
  return true
end

function reaper.CreateNewMIDIItemInProj(track, starttime, endtime, qnIn)
  changed("CreateNewMIDIItemInProj")
  assert(not qnIn, "fake: only times in seconds")
  local item = F.add_item(track, starttime, endtime - starttime)
  F.add_take(item, true)
  return item
end

function reaper.AddTakeToMediaItem(item)
  changed("AddTakeToMediaItem")
  return F.add_take(item, false)
end

function reaper.PCM_Source_CreateFromType(t) return {type = t} end

function reaper.SetMediaItemTake_Source(take, source)
  changed("SetMediaItemTake_Source")
  take.source = source
  return true
end

function reaper.SetActiveTake(take)
  changed("SetActiveTake")
  take.item.active = take.index
end

function reaper.GetSetMediaItemTakeInfo_String(take, key, value, set)
  if set then
    changed("GetSetMediaItemTakeInfo_String " .. key)
    take.info[key] = value
    return true, value
  end
  return take.info[key] ~= nil, take.info[key] or ""
end

-- ---------------------------------------------------------------- MIDI in a take
local function item_qn(take) return qn_of_time(take.item.pos) end

function reaper.MIDI_GetPPQPosFromProjQN(take, qn) return (qn - item_qn(take)) * F.ppq end
function reaper.MIDI_GetProjQNFromPPQPos(take, ppq) return item_qn(take) + ppq / F.ppq end

function reaper.MIDI_CountEvts(take) return #take.notes, #take.notes, 0, #take.texts end

function reaper.MIDI_GetNote(take, i)
  local n = take.notes[i + 1]
  if not n then return false end
  return true, n.selected, n.muted, n.s, n.e, n.chan, n.pitch, n.vel
end

function reaper.MIDI_InsertNote(take, selected, muted, s, e, chan, pitch, vel, noSort)
  changed("MIDI_InsertNote")
  assert(take.source and take.source.type == "MIDI", "fake: MIDI_InsertNote into a take without a MIDI source")
  assert(e > s, "fake: a note must end after it starts")
  F.add_note(take, s, e, chan, pitch, vel)
  F.inserted[#F.inserted + 1] = {item = take.item.index, take = take.index, s = s, e = e, chan = chan, pitch = pitch, vel = vel}
  return true
end

function reaper.MIDI_InsertTextSysexEvt(take, selected, muted, ppq, kind, text)
  changed("MIDI_InsertTextSysexEvt")
  take.texts[#take.texts + 1] = {ppq = ppq, kind = kind, text = text}
  return true
end

function reaper.MIDI_Sort(take)
  table.sort(take.notes, function(a, b) if a.s ~= b.s then return a.s < b.s end return a.pitch < b.pitch end)
end

-- ---------------------------------------------------------------- undo, UI, state, processes
function reaper.Undo_BeginBlock() F.depth = F.depth + 1; F.undo[#F.undo + 1] = {"begin"} end

function reaper.Undo_EndBlock(desc, flags)
  assert(F.depth > 0, "fake: Undo_EndBlock without Undo_BeginBlock")
  F.depth = F.depth - 1
  F.undo[#F.undo + 1] = {"end", desc}
end

function reaper.GetSet_LoopTimeRange(isSet, isLoop, s, e, allowAutoseek)
  assert(not isSet, "fake: the script must not change the time selection")
  return F.time_selection[1], F.time_selection[2]
end

function reaper.UpdateArrange() end
function reaper.ShowConsoleMsg(text) F.messages[#F.messages + 1] = text end
function reaper.ShowMessageBox(text, title, kind) F.messages[#F.messages + 1] = "BOX: " .. text; return 1 end

function reaper.GetUserInputs(title, n, captions, values)
  F.dialog = {title = title, n = n, captions = captions, values = values}
  if F.inputs == nil then return false, values end
  return true, F.inputs
end

function reaper.HasExtState(section, key) return F.ext[section .. "/" .. key] ~= nil end
function reaper.GetExtState(section, key) return F.ext[section .. "/" .. key] or "" end
function reaper.SetExtState(section, key, value, persist)
  assert(persist, "fake: settings must persist")
  F.ext[section .. "/" .. key] = value
end

function reaper.GetResourcePath() return F.resource end
function reaper.RecursiveCreateDirectory(path, ignored) os.execute("mkdir -p '" .. path .. "'"); return 1 end
function reaper.time_precise() return os.clock() + os.time() end
function reaper.get_action_context() return false, F.script, 0, 0, -1, -1, -1 end

function reaper.ExecProcess(cmd, timeout_ms)
  F.execs[#F.execs + 1] = cmd
  if timeout_ms < 0 then  -- no wait: as REAPER, the process runs on while the script goes on
    os.execute(cmd .. " >>'" .. F.resource .. "/exec.log' 2>&1 &")
    return ""
  end
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local _, _, code = p:close()
  return tostring(code) .. "\n" .. out
end

function reaper.defer(fn) F.deferred[#F.deferred + 1] = fn end

-- run the deferred functions as REAPER's ~30 Hz loop does, until none is left (or timeout_s)
function F.run_deferred(timeout_s)
  local t0 = os.time()
  while #F.deferred > 0 do
    local now = F.deferred
    F.deferred = {}
    for _, fn in ipairs(now) do fn() end
    if #F.deferred > 0 then os.execute("sleep 0.03") end
    assert(os.time() - t0 < timeout_s, "fake: deferred loop still running after " .. timeout_s .. " s")
  end
end

return F
