"""The package's architecture, checked: dependencies point one way, modules stay small.

Every ``import`` of a tfgan_opt module, at the top of a file or inside a function, is read from the
source with `ast`. Subpackages are ranked in pipeline order; a module may import its own subpackage
or a lower rank, never a higher one, and the module graph has no cycle.
"""

import ast
import os

import pytest

import tfgan_opt

PACKAGE_DIR = os.path.dirname(tfgan_opt.__file__)
# Lower ranks never import higher ones. Equal ranks are separate concerns: no imports either way.
RANKS = {
    "core": 0,
    "data": 1, "models": 1, "losses": 1,
    "compress": 2, "export": 2,
    "evaluation": 3,
    "training": 4,
    "pipeline": 5,
    "testing": 6, "__init__": 6,
}
MAX_LINES = 400


def _modules():
    """{dotted module name: source path} of every module of the package."""
    found = {}
    for root, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, ".")
                found[rel.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _resolve(name):
    """The module a dotted name refers to: itself if a module, else its parent (a name in it)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(path):
    """[(imported tfgan_opt module, line, inside a function?, has an explaining comment?)]."""
    source = open(path, encoding="utf-8").read()
    lines = source.splitlines()
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            names = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module:
                names = [f"{child.module}.{alias.name}" for alias in child.names]
            for name in names:
                if name.split(".")[0] == "tfgan_opt":
                    previous = lines[child.lineno - 2] if child.lineno > 1 else ""
                    commented = "#" in lines[child.lineno - 1] or previous.strip().startswith("#")
                    found.append((_resolve(name), child.lineno, in_function, commented))
            visit(child, nested)

    visit(ast.parse(source), False)
    return found


def _rank(module):
    parts = module.split(".")
    return RANKS[parts[1] if len(parts) > 1 else "__init__"], (parts[1] if len(parts) > 1 else "")


def test_every_subpackage_has_a_rank():
    tops = {name.split(".")[1] for name in MODULES if "." in name}
    assert tops <= set(RANKS), f"rank these subpackages in tests/test_layout.py: {tops - set(RANKS)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_pipeline(module):
    rank, top = _rank(module)
    for imported, line, _, _ in _imports(MODULES[module]):
        if imported == "tfgan_opt":
            assert top in ("testing", ""), f"{module}:{line} imports the package root"
            continue
        other_rank, other_top = _rank(imported)
        assert other_top == top or other_rank < rank, (
            f"{module}:{line} imports {imported} (rank {other_rank}) from rank {rank}")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_function_local_imports_say_why(module):
    for imported, line, in_function, commented in _imports(MODULES[module]):
        assert not in_function or commented, (
            f"{module}:{line} imports {imported} inside a function without a comment saying why")


def test_the_module_graph_has_no_cycle():
    graph = {module: {imported for imported, *_ in _imports(path) if imported != module}
             for module, path in MODULES.items()}
    state = {}

    def visit(module, trail):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join(trail + [module])
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            # A package's __init__ re-exporting its own modules is not a cycle through them.
            if not imported.startswith(module + "."):
                visit(imported, trail + [module])
        state[module] = "done"

    for module in sorted(graph):
        visit(module, [])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_under_400_lines(module):
    with open(MODULES[module], encoding="utf-8") as f:
        count = sum(1 for _ in f)
    assert count <= MAX_LINES, f"{module} has {count} lines; split it"


def test_subpackages_say_what_they_own():
    for module, path in MODULES.items():
        if path.endswith("__init__.py"):
            docstring = ast.get_docstring(ast.parse(open(path, encoding="utf-8").read()))
            assert docstring and len(docstring) > 40, f"{module}/__init__.py needs a docstring"
