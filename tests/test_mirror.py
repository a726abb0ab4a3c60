"""tests/ mirrors jaxkd/: every module has its test file, named after it.

    jaxkd/<module>.py              -> tests/test_<module>.py
    jaxkd/<pkg>/<module>.py        -> tests/<pkg>/test_<module>.py
    jaxkd/<pkg>/__init__.py        -> tests/<pkg>/test_<pkg>.py  (when it defines anything)

Suites that cut across modules (the paper configs, the CLI in subprocesses, the README and
notebooks as written, the import graph, chaos) keep their own names at the top level
(`CROSS_CUTTING`); a top-level test file that is neither is an error, so a new module
cannot hide its tests in another module's file.
"""

import ast
import pathlib

import jaxkd

PACKAGE = pathlib.Path(jaxkd.__file__).parent
TESTS = pathlib.Path(__file__).resolve().parent

# Top-level suites that test the project rather than one module.
CROSS_CUTTING = {
    "test_architecture_doc.py",   # docs/architecture.md against the code
    "test_benchmarks.py",         # benchmarks/ (not part of the package)
    "test_configs.py",            # every shipped config in configs/ against its paper
    "test_import_graph.py",       # the package's import graph
    "test_mirror.py",             # this file
    "test_notebooks.py",          # notebooks/
    "test_parity.py",             # experiments/parity (not part of the package)
    "test_gpu_table3.py",         # experiments/gpu/table3.py (not part of the package)
    "test_paired.py",             # experiments/paired.py (not part of the package)
    "test_lstm_lm.py",            # [BAN] Table 6 end to end: text data, LSTM, plan, resume
    "test_optional_deps.py",      # a fresh install without the optional extras
    "test_papers_doc.py",         # docs/papers.md
    "test_readme.py",             # README.md's commands as written
}
# Modules with nothing of their own to test: package markers and entry-point shims.
EXEMPT = {"jaxkd/__main__.py", "jaxkd/report/__main__.py"}


def _defines_something(path: pathlib.Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in tree.body)


def expected_test_files() -> dict[str, pathlib.Path]:
    """Module path (relative to the repository) -> the test file it must have."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        name = f"jaxkd/{rel.as_posix()}"
        if name in EXEMPT:
            continue
        if rel.name == "__init__.py":
            if len(rel.parts) == 1 or not _defines_something(path):
                continue
            out[name] = TESTS.joinpath(*rel.parts[:-1], f"test_{rel.parts[-2]}.py")
        else:
            out[name] = TESTS.joinpath(*rel.parts[:-1], f"test_{rel.stem}.py")
    return out


def test_every_module_has_its_test_file():
    missing = [f"{module}: {test.relative_to(TESTS.parent)}"
               for module, test in expected_test_files().items() if not test.is_file()]
    assert not missing, "modules without their test file:\n" + "\n".join(missing)


def test_every_test_file_has_tests():
    empty = [str(t.relative_to(TESTS.parent)) for t in expected_test_files().values()
             if t.is_file() and "def test_" not in t.read_text()]
    assert not empty, empty


def test_no_stray_test_files():
    """Each test file belongs to a module or is a named cross-cutting suite."""
    owned = set(expected_test_files().values())
    stray = [str(p.relative_to(TESTS.parent)) for p in TESTS.rglob("test_*.py")
             if p not in owned and p.parent != TESTS / "chaos"
             and not (p.parent == TESTS and p.name in CROSS_CUTTING)]
    assert not stray, "test files that mirror no module: " + ", ".join(sorted(stray))
