"""A stand-in for `musegen client` (tests/test_daw_hosts.py): records its command line and writes
a canned answer, so a host script's request building and placement can be checked without a
server. The answer: one take per `variations`, each the whole clip (placement at_input), with
notes on bars 0 and 1 (and, for lyrics, a syllable on each)."""

import json
import sys
from pathlib import Path

argv = sys.argv[1:]
log = Path(argv.pop(0))
with log.open("a") as f:
    f.write(json.dumps(argv) + "\n")
op = argv[1]
out = Path(argv[argv.index("--out") + 1])
params = argv[2:argv.index("--port")]
kv = dict(zip(params[0::2], params[1::2]))
lines = ["musegen-result 1", f"op {op}", "source t0001", "input_bars 2", "request r1",
         "session /tmp/fake-session", "placement at_input"]
for k in range(int(kv.get("variations", 1))):
    lines.append(f"take {k} t{k + 2:04d} 2 3/4 97 /tmp/fake-session/takes/t{k + 2:04d}.mid")
    syl = " la" if op == "lyrics" else ""
    lines += [f"note {k} 0 0.5 1.0 {60 + k} 80 0{syl}", f"note {k} 1 {1 / 3!r} 0.25 {64 + k} 80 1{syl}"]
lines += ["done t0002", "ok"]
tmp = out.with_suffix(".tmp")
tmp.write_text("\n".join(lines) + "\n")
tmp.rename(out)
