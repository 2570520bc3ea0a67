-- @description musegen: undo
-- Undo the latest accept, reject or edit in the musegen session (REAPER's own undo reverts the takes).
-- Needs `musegen serve` running (docs/daw.md). The logic is in musegen.lua, next to this file.
local here = ({reaper.get_action_context()})[2]:match("^(.*[/\\])") or ""
package.path = here .. "?.lua;" .. package.path
local musegen = require("musegen")
musegen.undo()
