"""The house as a specification: which package may import which, and no import circles.

The import graph is read from the source (every `import`, at module level or inside a
function), so a function-level import that only dodges a circle still closes it here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Import name -> folder (the folders keep the design's names: see pyproject's package-dir).
PACKAGES = {
    "zarr_stac.loaders": ROOT / "loaders",
    "static_catalog": ROOT / "static_catalog",
    "stac_api": ROOT / "stac_api",
    "zarr_stac": ROOT / "zarr_stac",
}
LOADERS_STAGES = ("finding", "reading", "mapping", "running")


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _own(name: str) -> str | None:
    """The project module `name` is (or is inside), None for other libraries."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> Iterator[tuple[str, int, bool]]:
    """(project module imported, line, inside a function?) for every import in `module`."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    nested = {id(child) for fn in functions for child in ast.walk(fn) if child is not fn}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node)
            # `from package import module` names a module; `from module import name` a name.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            own = _own(target)
            if own is not None and own != module:
                yield own, node.lineno, id(node) in nested


def graph(function_level: bool = True) -> dict[str, set[str]]:
    return {
        module: {target for target, _, inside in imports_of(module) if function_level or not inside}
        for module in MODULES
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read():
    """A check of the checker: the modules and edges it must see."""
    edges = graph()
    assert "zarr_stac.loaders.running.crawl" in edges
    assert "zarr_stac.loaders.vocabulary" in edges["zarr_stac.loaders.running.crawl"]
    assert "zarr_stac.common.storage" in edges["zarr_stac.loaders.finding.prefixes"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles_anywhere():
    """Not between modules, function-level imports included (none may exist to dodge one)."""
    assert cycles(graph()) == []


def _packages_of(edges: dict[str, set[str]], depth: int) -> dict[str, set[str]]:
    def package(module: str) -> str:
        return ".".join(module.split(".")[:depth])

    folded: dict[str, set[str]] = {}
    for module, targets in edges.items():
        folded.setdefault(package(module), set()).update(package(t) for t in targets if package(t) != package(module))
    return folded


def test_no_circles_between_the_stages_of_loaders():
    """finding, reading, mapping and running (and the shared vocabulary beside them)."""
    loaders = {m: t for m, t in graph().items() if m.startswith("zarr_stac.loaders.")}
    assert cycles(_packages_of(loaders, 3)) == []


def _imported_by(prefix: str) -> set[str]:
    return {target for module, targets in graph().items() if module.startswith(prefix) for target in targets}


def _under(modules: set[str], *prefixes: str) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)}


COMPOSERS = (
    "zarr_stac.cli",
    "zarr_stac.options",
    "zarr_stac.reporting",
    "zarr_stac.db_commands",
    "zarr_stac.publish",
    "zarr_stac.demo",
    "zarr_stac.samples",
    "zarr_stac.services",
    "zarr_stac.__main__",
)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        # The shared kernel imports none of the packages that use it.
        ("zarr_stac.common", ("zarr_stac.loaders", "static_catalog", "stac_api", *COMPOSERS)),
        # loaders knows nothing of Postgres, HTTP serving or the static writer.
        ("zarr_stac.loaders", ("static_catalog", "stac_api", *COMPOSERS)),
        # The publishers consume STAC objects; they neither crawl nor know each other.
        ("static_catalog", ("zarr_stac.loaders", "stac_api", *COMPOSERS)),
        ("stac_api", ("zarr_stac.loaders", "static_catalog", *COMPOSERS)),
    ],
)
def test_each_layer_imports_only_the_layers_below(package, forbidden):
    assert _under(_imported_by(package + "."), *forbidden) == set()
    assert _under(graph().get(package, set()), *forbidden) == set()


def test_the_vocabulary_of_loaders_imports_no_stage():
    shared = ("zarr_stac.loaders.vocabulary", "zarr_stac.loaders.failures")
    stages = tuple(f"zarr_stac.loaders.{stage}" for stage in LOADERS_STAGES)
    for module in shared:
        assert _under(graph()[module], *stages) == set(), module


def test_nothing_is_imported_under_a_generic_top_level_name():
    """`common` and `loaders` are folders of the house, installed as zarr_stac.common and
    zarr_stac.loaders: no code imports them by their folder names."""
    offenders = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            offenders += [f"{module}:{node.lineno} {n}" for n in names if n.split(".")[0] in ("common", "loaders")]
    assert offenders == []


# What runs a crawl into a publisher: a crawl made, an earlier ledger read, a publication finished.
PUBLISHING_CALLS = frozenset({"Crawl", "crawl", "earlier_ledger", "keep_ledger", "finish"})


def test_one_path_from_the_crawl_to_a_publisher():
    """`build`, `load` and the demo run the one driver, `zarr_stac.publish`: no other composer
    runs the sequence (the demo then does what the commands do, ledgers included)."""
    offenders = []
    for module, path in MODULES.items():
        if not _under({module}, *COMPOSERS) or module == "zarr_stac.publish":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if name in PUBLISHING_CALLS:
                    offenders.append(f"{module}:{node.lineno} {name}()")
    assert offenders == []
