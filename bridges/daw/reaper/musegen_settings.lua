-- @description musegen: settings
-- musegen settings: style, bars, variations, temperature, blend mix, morph styles, port, command.
-- Needs `musegen serve` running (docs/daw.md). The logic is in musegen.lua, next to this file.
local here = ({reaper.get_action_context()})[2]:match("^(.*[/\\])") or ""
package.path = here .. "?.lua;" .. package.path
local musegen = require("musegen")
musegen.settings_dialog()
