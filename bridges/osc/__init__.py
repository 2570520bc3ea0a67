"""OSC bridge: `musegen serve` answers DAWs and controllers over UDP (see docs/osc.md).

- `protocol`: the address space and its argument checks (no I/O)
- `notes`: clips as `/musegen/note` streams, both ways
- `jobs`: what the workers do with a request (studio + session)
- `server`: the socket, the listener thread and the workers
"""

from bridges.osc.protocol import Limits, ProtocolError, Request, parse_request
from bridges.osc.server import OscServer, default_limits

__all__ = ["OscServer", "Limits", "ProtocolError", "Request", "parse_request", "default_limits"]
