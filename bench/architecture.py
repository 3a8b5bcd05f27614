"""Measure the package's shape from its own source (issue 27): import circles, imports that run
back up the layers, modules over 500 lines, functions over 60 lines. No import of tftrain: the
source is parsed with `ast`, so it runs in a blink and counts function-level imports too.

    python bench/architecture.py [--verbose]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "tftrain"
# Layers from the bottom: a module may import its own layer and those below it. Everything not
# listed is the top (cli, the Python API, commands).
LAYERS = ("errors", "safe_files", "spec", "console", "plugins", "data", "security", "models", "runs", "labels", "hparams",
          "tracking", "tracking_wandb", "tf_setup", "usage", "training")
# DESIGN.md: the config layer reads the model types' schema classes (the `model:` union), and
# validate imports the plugins a config names to look their registered names up (What runs code).
ALLOWED = {("tftrain.spec", "tftrain.models"), ("tftrain.spec", "tftrain.plugins")}
MODULE_LINES, FUNCTION_LINES = 500, 60


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules `name` imports anywhere in its source (module or function level)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", getattr(block.test, "attr", None)) == "TYPE_CHECKING"
                   for n in ast.walk(block)}  # imports for annotations only never run
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("tftrain"):
                out.add(target)
    return out


def layer(name: str) -> int:
    """The module's layer index (0 = bottom); the top for anything not listed."""
    parts = name.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), i.e. import circles."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def long_functions(path: Path) -> list[tuple[str, int]]:
    """(name, lines) of every function longer than FUNCTION_LINES."""
    tree = ast.parse(path.read_text())
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > FUNCTION_LINES]


def measure() -> dict:
    """Every figure issue 27 asks for, as plain data."""
    known = modules()
    # A package's __init__ imported for its name only is not an edge to its children.
    graph = {name: {t for t in imports(name, path, known) if not (t != "tftrain" and name.startswith(t + "."))}
             for name, path in known.items()}
    graph = {name: {t for t in targets if t != "tftrain"} for name, targets in graph.items()}
    back_up = sorted((a, b) for a, targets in graph.items() for b in targets if layer(b) > layer(a)
                     and not any(a.startswith(x) and b.startswith(y) for x, y in ALLOWED))
    big = sorted((len(p.read_text().splitlines()), n) for n, p in known.items()
                 if len(p.read_text().splitlines()) > MODULE_LINES)
    long = sorted((lines, f"{n}.{f}") for n, p in known.items() for f, lines in long_functions(p))
    return {"circles": circles(graph), "back_up": back_up, "big_modules": big, "long_functions": long}


def main() -> None:
    figures = measure()
    verbose = "--verbose" in sys.argv
    print(f"import circles: {len(figures['circles'])}")
    for part in figures["circles"]:
        print(f"  {len(part)} modules: {', '.join(part) if verbose or len(part) < 6 else ', '.join(part[:5]) + ', ...'}")
    print(f"imports that run back up the layers: {len(figures['back_up'])}")
    for a, b in figures["back_up"]:
        print(f"  {a} -> {b}")
    print(f"modules over {MODULE_LINES} lines: {len(figures['big_modules'])}")
    for lines, name in figures["big_modules"]:
        print(f"  {name}: {lines}")
    print(f"functions over {FUNCTION_LINES} lines: {len(figures['long_functions'])}")
    for lines, name in figures["long_functions"]:
        print(f"  {name}: {lines}")


if __name__ == "__main__":
    main()
