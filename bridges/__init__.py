"""How the outside world drives musegen: CLI, OSC server, MIDI ports, DAW-side scripts."""
