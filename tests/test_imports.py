"""What the untangling of issue 13 item 2 keeps true beyond tests/test_architecture.py (no
cycle, no private name across packages): the lyrics never import the studio, and a take, the
parameter table and the OSC protocol load without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _imported(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_lyrics_do_not_import_the_studio():
    for f in sorted((ROOT / "musegen" / "lyrics").glob("*.py")):
        assert "musegen.studio" not in _imported(f), f.name


def test_take_params_and_protocol_load_without_torch():
    code = ("import sys; import musegen.take, musegen.params, bridges.osc.protocol; "
            "from musegen import Take; assert Take is musegen.take.Take; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    assert out.stdout.strip() == "False"
