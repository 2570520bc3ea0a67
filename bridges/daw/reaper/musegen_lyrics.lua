-- @description musegen: lyrics
-- Words for the melody of the selected MIDI item: new takes with one lyric event per note.
-- Needs `musegen serve` running (docs/daw.md). The logic is in musegen.lua, next to this file.
local here = ({reaper.get_action_context()})[2]:match("^(.*[/\\])") or ""
package.path = here .. "?.lua;" .. package.path
local musegen = require("musegen")
musegen.generate("lyrics")
