"""The import graph of musegen and bridges, read from the source (ast, nothing imported): no
import cycle, no module using a private name (`_x`) of another package's module, and the
pieces that must load without torch do."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("musegen", "bridges")


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _lazy_nodes(tree: ast.Module, is_package: bool) -> set[int]:
    """Nodes that never run while modules import each other: `if TYPE_CHECKING:` blocks, and a
    package's PEP 562 `__getattr__` (it runs only when a user asks for `musegen.Studio`)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        lazy_attr = is_package and isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
        if lazy_attr or (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, str | None, int, bool]]:
    """(module imported, name taken from it or None, line, runs at import-graph time) for every
    first-party import, module level or inside a function."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    lazy = _lazy_nodes(tree, is_package)
    here = name.split(".") if is_package else name.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            pairs = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            pairs = [(base, a.name) for a in node.names]
        else:
            continue
        for base, taken in pairs:
            target = f"{base}.{taken}" if taken and f"{base}.{taken}" in known else base
            if target in known:
                module_taken = taken if target == base else None
                out.append((target, module_taken, node.lineno, id(node) not in lazy))
    return out


def package_of(name: str, known: dict[str, Path]) -> str:
    return name if known[name].name == "__init__.py" else name.rsplit(".", 1)[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_import_cycle():
    known = modules()
    graph = {m: {t for t, _, _, live in imports(m, p, known) if live and t != m}
             for m, p in known.items()}
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_private_name_taken_from_another_package():
    known = modules()
    bad = []
    for m, p in known.items():
        for target, taken, line, _ in imports(m, p, known):
            private = taken is not None and taken.startswith("_") and not taken.startswith("__")
            if private and package_of(target, known) != package_of(m, known):
                bad.append(f"{p.relative_to(ROOT)}:{line} takes {taken} from {target}")
    assert bad == []


def test_lyrics_do_not_import_the_studio():
    known = modules()
    for m in ("musegen.lyrics.melody", "musegen.lyrics.writer"):
        assert "musegen.studio" not in {t for t, *_ in imports(m, known[m], known)}, m


def test_take_params_and_protocol_load_without_torch():
    code = ("import sys; import musegen.take, musegen.params, bridges.osc.protocol; "
            "from musegen import Take; assert Take is musegen.take.Take; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    assert out.stdout.strip() == "False"
