-- @description musegen: continue
-- Continue the selected MIDI item by N bars (settings: bars, variations, style); the takes land as takes of a new item right after it.
-- Needs `musegen serve` running (docs/daw.md). The logic is in musegen.lua, next to this file.
local here = ({reaper.get_action_context()})[2]:match("^(.*[/\\])") or ""
package.path = here .. "?.lua;" .. package.path
local musegen = require("musegen")
musegen.generate("continue")
