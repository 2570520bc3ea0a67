-- @description musegen: accept
-- Accept the active take of the selected item in the musegen session (an edited take is sent back first as an edit).
-- Needs `musegen serve` running (docs/daw.md). The logic is in musegen.lua, next to this file.
local here = ({reaper.get_action_context()})[2]:match("^(.*[/\\])") or ""
package.path = here .. "?.lua;" .. package.path
local musegen = require("musegen")
musegen.accept()
