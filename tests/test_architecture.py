"""The architecture, read from the source with ``ast`` (nothing is imported).

The layers are the folders: ``core`` (numpy only) ← ``training`` ← ``engines`` ← the edges
(``cnn``, ``trust``, ``report``, ``sweep``, ``sklearn``, ``cli``, ``web``).  A module imports
its own layer or the ones below it; no import cycle at module level; imports inside functions
only for the heavy optional libraries; no function over 80 lines.  See docs/ARCHITECTURE.md.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "scratchnet"

LAYERS = {"core": 0, "training": 1, "engines": 2}  # every other module is an edge (3)
EDGE = 3
# imported inside functions, so that `scratchnet train` starts without them
HEAVY = {"matplotlib", "torch", "sympy", "numba", "dask", "distributed", "fastapi", "uvicorn",
         "daft", "sklearn", "nbformat", "playwright", "websockets", "wsproto", "safetensors",
         "threadpoolctl", "scipy", "PIL"}
# The documented points where a lower layer reaches up, inside a function: training picks its
# engine here (training/train.py: compiled_engine / engine_for), and only here.
SELECTION_POINTS = {("scratchnet.training.train", "scratchnet.engines.fast")}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], EDGE) if len(parts) > 1 else EDGE


class Import:
    def __init__(self, source: str, target: str, line: int, in_function: bool):
        self.source, self.target, self.line, self.in_function = source, target, line, in_function

    @property
    def top(self) -> str:
        return self.target.split(".")[0]

    def __repr__(self) -> str:
        where = "in a function" if self.in_function else "module level"
        return f"{self.source}:{self.line} → {self.target} ({where})"


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The modules an ``import`` / ``from … import`` statement loads (a name that is a module
    of the package counts as that module)."""
    if node.level:
        package = module.split(".")
        is_package = MODULES[module].name == "__init__.py"
        base = package[:len(package) - node.level + (1 if is_package else 0)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    out = []
    for alias in node.names:
        sub = f"{prefix}.{alias.name}"
        out.append(sub if sub in MODULES else prefix)
    return out


def imports_of(module: str) -> list[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[Import] = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                       ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend(Import(module, a.name, child.lineno, inside) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.extend(Import(module, t, child.lineno, inside)
                             for t in _resolve(module, child))
            visit(child, inside)

    visit(tree, False)
    return found


ALL = [imp for m in MODULES for imp in imports_of(m)]
INTERNAL = [i for i in ALL if i.top == "scratchnet"]


def _heavy_modules() -> set[str]:
    """The package's modules whose import loads a heavy library (a module-level import of one,
    directly or through another such module): importing one of them inside a function is as
    lazy as importing the library itself (engines.fast and engines.gpu load numba)."""
    heavy = {i.source for i in ALL if not i.in_function and i.top in HEAVY}
    while True:
        more = {i.source for i in INTERNAL if not i.in_function and i.target in heavy} - heavy
        if not more:
            return heavy
        heavy |= more


HEAVY_MODULES = _heavy_modules()


def is_heavy(i: Import) -> bool:
    return i.top in HEAVY or i.target in HEAVY_MODULES


# A command module may load the modules that implement its commands (the report, the sweep,
# the trust tools, the playground) when the command runs, so that every command starts
# without the others' (the report alone costs ~60 ms of start-up).
COMMAND_BACKENDS = ("scratchnet.report", "scratchnet.sweep", "scratchnet.trust",
                    "scratchnet.web")


def is_command_backend(i: Import) -> bool:
    return i.source.startswith("scratchnet.cli") and i.target.startswith(COMMAND_BACKENDS)


def test_the_modules_are_found():
    assert {"scratchnet.core.network", "scratchnet.training.options", "scratchnet.cli.common",
            "scratchnet.sklearn"} <= set(MODULES)
    assert any(i.target == "scratchnet.training.options" for i in INTERNAL)


def test_no_import_cycle_at_module_level():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in INTERNAL:
        if not i.in_function and i.target in MODULES and i.target != i.source:
            graph[i.source].add(i.target)
    state: dict[str, int] = {}  # 1: on the path, 2: done
    cycles = []

    def walk(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(path[path.index(t):] + [t])
            elif t not in state:
                walk(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m, [m])
    assert cycles == []


def test_the_core_imports_only_numpy_the_standard_library_and_itself():
    """(and, inside a function, an optional heavy library: safetensors for large weights)"""
    bad = [i for i in ALL if i.source.startswith("scratchnet.core")
           and not (i.top in ("numpy", "__future__") or i.top in sys.stdlib_module_names
                    or i.target.startswith("scratchnet.core")
                    or (i.in_function and i.top in HEAVY))]
    assert bad == []


def test_every_import_points_down_the_layers():
    """core ← training ← engines ← edges: a module imports its own layer or a lower one;
    training reaches engines only at the documented selection point, inside a function."""
    up = [i for i in INTERNAL if i.target in MODULES and layer(i.target) > layer(i.source)
          and not (i.in_function and (i.source, i.target) in SELECTION_POINTS)]
    assert up == []


# Imports of light modules inside functions, per file, beyond the commands' backends: none
# (issue 11 item 5; 124 at the start of 2026-12-07).
LIGHT_IN_FUNCTIONS_ALLOWED: dict[str, int] = {}


def light_imports_in_functions() -> dict[str, list[Import]]:
    """Per module, its import statements inside functions that load no heavy library."""
    out: dict[str, dict[int, Import]] = {}
    for i in ALL:
        if i.in_function and not is_heavy(i) and not is_command_backend(i):
            out.setdefault(i.source, {}).setdefault(i.line, i)
    return {m: list(by_line.values()) for m, by_line in out.items()}


def test_imports_inside_functions_are_for_heavy_libraries_only():
    found = light_imports_in_functions()
    over = {m: [repr(i) for i in imps] for m, imps in found.items()
            if len(imps) > LIGHT_IN_FUNCTIONS_ALLOWED.get(m, 0)}
    assert over == {}


# ---- function length ------------------------------------------------------------------
MAX_LINES = 80
# Split this round: report.html.render_html, report.build.build_report, report.derive.derive,
# engines.gpu.make_generic_kernel, engines.fast._epochs_py, web.app.create_app,
# web.live.Tab.handle: no function under src/ may be longer.
# generated kernel source is exempt; today the kernels (engines/codegen.py, engines/fast.py)
# are rendered as text at run time, so no function under src/ is one
GENERATED: set[str] = set()


def functions(module: str):
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))

    def walk(node, prefix: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}.{child.name}"
                yield name, child.end_lineno - child.lineno + 1
                yield from walk(child, name)
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}.{child.name}")

    yield from walk(tree, module)


def test_no_function_is_over_80_lines():
    long = {name: n for m in MODULES for name, n in functions(m)
            if n > MAX_LINES and name not in GENERATED}
    assert long == {}
