-- @description musegen: morph
-- Continue the selected MIDI item with clips morphing from one style to another (settings: morph from/to).
-- Needs `musegen serve` running (docs/daw.md). The logic is in musegen.lua, next to this file.
local here = ({reaper.get_action_context()})[2]:match("^(.*[/\\])") or ""
package.path = here .. "?.lua;" .. package.path
local musegen = require("musegen")
musegen.generate("morph")
