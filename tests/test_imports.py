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


def test_no_cache_is_kept_in_another_objects_dict():
    """Caches live on their owners (a declared field, or a weak map in the module that owns the
    cache), never poked into another object's `__dict__` or set as a private attribute on it."""
    offenders = []
    for folder in ("musegen", "bridges"):
        for f in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                # x.__dict__[k] / x.__dict__.get(k) / x.__dict__.setdefault(k, v) on an x that is not self
                inner = node.value if isinstance(node, ast.Subscript) else (
                    node.func.value if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("get", "setdefault") else None)
                if (isinstance(inner, ast.Attribute) and inner.attr == "__dict__"
                        and not (isinstance(inner.value, ast.Name) and inner.value.id in ("self", "cls"))):
                    offenders.append(f"{f.relative_to(ROOT)}:{node.lineno}")
                if isinstance(node, ast.Assign):  # obj._cache = ... on another object
                    for t in node.targets:
                        if (isinstance(t, ast.Attribute) and t.attr.startswith("_") and t.attr != "_"
                                and not t.attr.startswith("__")
                                and isinstance(t.value, ast.Name) and t.value.id not in ("self", "cls")):
                            offenders.append(f"{f.relative_to(ROOT)}:{node.lineno} ({t.value.id}.{t.attr})")
    assert not offenders, "caches kept on objects that do not own them: " + ", ".join(offenders)
