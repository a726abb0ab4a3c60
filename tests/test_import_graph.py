"""The package's import graph: no cycles, no hidden (function-local) imports.

Built from the source with `ast`, so it sees every `import` statement, module level or
not. An import inside a function is allowed only for an optional heavy dependency
(`_LAZY_OK`), never for a jaxkd module: a local import is how a cycle hides.
"""

import ast
import collections
import pathlib

import jaxkd

ROOT = pathlib.Path(jaxkd.__file__).parent
# Optional or heavy third-party modules a function may import on first use.
_LAZY_OK = {"tensorflow_datasets", "tensorflow", "importlib_resources", "torch",
            "array_record", "PIL", "tqdm", "tensorboardX"}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ("jaxkd",) + path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: pathlib.Path, modules) -> list[tuple[str, bool, int]]:
    """(imported module, at module level, line) for every import statement of a module."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    top = {id(node) for node in tree.body}
    # An import under `if TYPE_CHECKING:` or in try/except at module level still runs at
    # import time (or never): count statements nested in module-level if/try as top level.
    for node in tree.body:
        if isinstance(node, (ast.If, ast.Try)):
            top |= {id(n) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        out += [(t, id(node) in top, node.lineno) for t in targets]
    return out


def _graph():
    modules = _modules()
    graph = collections.defaultdict(set)
    local = []
    for name, path in modules.items():
        for target, at_top, line in _imports(name, path, modules):
            if target.startswith("jaxkd"):
                if not at_top:
                    local.append(f"{name}:{line} imports {target} inside a function")
                graph[name].add(target)
            elif not at_top and target.split(".")[0] not in _LAZY_OK:
                local.append(f"{name}:{line} imports {target} inside a function")
    return modules, graph, local


def _cycle(graph) -> list[str] | None:
    """One import cycle (a list of modules, first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # Importing a submodule runs its parent packages' __init__ first (the packages
            # the importer itself sits in are already being imported: not a new edge).
            for dep in [d for d in _with_parents(nxt) if not _is_within(node, d)] or [nxt]:
                if state.get(dep) == "open":
                    return stack[stack.index(dep):] + [dep]
                if dep not in state:
                    found = visit(dep)
                    if found:
                        return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts) + 1)]


def test_the_package_has_no_import_cycle():
    _, graph, _ = _graph()
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_function_local_imports():
    _, _, local = _graph()
    assert not local, "\n".join(local)


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"jaxkd.a": {"jaxkd.b"}, "jaxkd.b": {"jaxkd.c"}, "jaxkd.c": {"jaxkd.a"}}
    assert _cycle(graph) == ["jaxkd.a", "jaxkd.b", "jaxkd.c", "jaxkd.a"]
    assert _cycle({"jaxkd.a": {"jaxkd.b"}, "jaxkd.b": set()}) is None


def test_every_module_imports_on_its_own():
    """Each module imports in a fresh interpreter order-independently (no cycle at run
    time either): importing them one by one in sorted order here is the cheap check."""
    import importlib
    for name in sorted(_modules()):
        importlib.import_module(name)
