-- @description musegen: blend
-- Continue the selected MIDI item under the blend mix of the settings (a=0.7 b=0.3).
-- Needs `musegen serve` running (docs/daw.md). The logic is in musegen.lua, next to this file.
local here = ({reaper.get_action_context()})[2]:match("^(.*[/\\])") or ""
package.path = here .. "?.lua;" .. package.path
local musegen = require("musegen")
musegen.generate("blend")
