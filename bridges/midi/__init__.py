"""Live MIDI bridge: `musegen midi` listens on a port, answers each phrase in tempo.

- `ports`: the two-method port interface, in-memory ports for tests, real ports via rtmidi
- `transport`: the beat position, from MIDI clock or a set tempo
- `phrase`: capturing a phrase and deciding when it is over (silence or a controller)
- `playback`: a clip as timed note events, sent when the transport reaches them
- `responder`: call and response, tying the above to the studio and the session
"""

from bridges.midi.ports import MemoryInput, MemoryOutput, MidiPortError, open_ports
from bridges.midi.responder import CallAndResponse, ResponderConfig, run
from bridges.midi.transport import Transport

__all__ = ["CallAndResponse", "ResponderConfig", "run", "Transport", "MemoryInput",
           "MemoryOutput", "MidiPortError", "open_ports"]
