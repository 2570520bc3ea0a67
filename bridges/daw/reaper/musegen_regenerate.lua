-- @description musegen: regenerate
-- Regenerate the bars of the time selection in the selected MIDI item; the takes land as new takes of that item.
-- Needs `musegen serve` running (docs/daw.md). The logic is in musegen.lua, next to this file.
local here = ({reaper.get_action_context()})[2]:match("^(.*[/\\])") or ""
package.path = here .. "?.lua;" .. package.path
local musegen = require("musegen")
musegen.generate("regenerate")
