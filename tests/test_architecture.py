"""The package's layout rules (DESIGN.md section 7), checked on the source.

- no package file over 800 lines, no function over 90 lines;
- module-level imports between package modules form no cycle;
- at most three function-level imports of package modules, each with a comment saying why.
"""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "statsmodels_lmm_ext"
FILES = sorted(p for p in PKG.rglob("*.py"))


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(path: Path, node: ast.ImportFrom) -> list[str]:
    """Package modules named by a ``from ... import ...`` (relative or absolute)."""
    if node.level:
        base = _module(path).split(".")
        if path.name != "__init__.py":
            base = base[:-1]
        base = base[: len(base) - node.level + 1]
        mod = ".".join(base + ([node.module] if node.module else []))
    else:
        mod = node.module or ""
    if not mod.startswith("statsmodels_lmm_ext"):
        return []
    known = {_module(p) for p in FILES}
    out = [mod] if mod in known else []
    out += [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known]
    return out


def _imports(path: Path, function_level: bool) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    inner = {id(n) for f in funcs for n in ast.walk(f) if n is not f}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (id(node) in inner) == function_level:
            out += [(node.lineno, m) for m in _resolve(path, node)]
    return out


def test_file_and_function_sizes():
    long_files = [f"{p.name}: {n}" for p in FILES if (n := len(p.read_text().splitlines())) > 800]
    assert not long_files
    long_funcs = []
    for p in FILES:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > 90:
                    long_funcs.append(f"{p.relative_to(PKG)}:{node.name} ({n} lines)")
    assert not long_funcs


def test_module_level_imports_have_no_cycle():
    graph = {_module(p): {m for _, m in _imports(p, False)} for p in FILES}
    # a package's __init__ re-exports its submodules: importing a submodule runs its
    # package __init__ first, so edges into a package count, edges from __init__ to its own
    # submodules do not make a cycle on their own
    state: dict[str, int] = {}
    cycles = []

    def visit(m, stack):
        state[m] = 1
        for n in graph.get(m, ()):
            if n == m or n.startswith(m + "."):
                continue  # a package importing (from) itself or its own submodules
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n) :] + [n] if n in stack else [m, n])
            elif state.get(n) is None:
                visit(n, stack + [n])
        state[m] = 2

    for m in graph:
        if state.get(m) is None:
            visit(m, [m])
    assert not cycles


def test_function_level_imports_are_few_and_commented():
    found = []
    for p in FILES:
        lines = p.read_text().splitlines()
        for lineno, mod in _imports(p, True):
            context = " ".join(lines[max(0, lineno - 3) : lineno])
            found.append((f"{p.relative_to(PKG)}:{lineno} {mod}", "#" in context))
    assert len(found) <= 3, found
    assert all(commented for _, commented in found), found
