"""docs/architecture.md is checked against the code it describes.

Every dotted name it quotes in backticks (`jaxkd.plans.build`, `jaxkd.workspace.Workspace.
from_workdir(workdir, config)`) must import, and every parameter it quotes in such a call
must be a parameter of that callable; every path it quotes (`jaxkd/engine/loop.py`) must
exist; and every module of the package must be named in it, so the page cannot fall
behind a new module or a renamed function.
"""

import importlib
import inspect
import pathlib
import re

import pytest

import jaxkd

REPO = pathlib.Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
PACKAGE = pathlib.Path(jaxkd.__file__).parent

_QUOTED = re.compile(r"`([^`]+)`")
_NAME = re.compile(r"^(jaxkd(?:\.\w+)+)(\((.*)\))?")
_PATH = re.compile(r"^((?:jaxkd|tests|benchmarks|configs|grids|docs)/[\w/.]*)")


def _quotes() -> list[str]:
    """Inline `code` spans of the page (fenced blocks left out)."""
    text = re.sub(r"```.*?```", "", DOC.read_text(), flags=re.S)
    return _QUOTED.findall(text)


def _resolve(dotted: str):
    """The object a dotted name designates: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def _param_names(args: str) -> list[str]:
    """Parameter names quoted in `f(a, *, b=1, c: int)`; '...' and '*' are skipped."""
    names = []
    for piece in re.split(r",(?![^\[(]*[\])])", args):
        piece = piece.strip().lstrip("*")
        name = re.split(r"[=:\s]", piece, maxsplit=1)[0]
        if name and name.isidentifier():
            names.append(name)
    return names


def _parameters(obj) -> set[str] | None:
    try:
        return set(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return None


def test_every_quoted_name_imports_and_its_quoted_parameters_exist():
    assert len([q for q in _quotes() if _NAME.match(q)]) > 100   # the page quotes names
    problems = []
    for quote in _quotes():
        match = _NAME.match(quote)
        if not match:
            continue
        dotted, call, args = match.group(1), match.group(2), match.group(3)
        try:
            obj = _resolve(dotted)
        except (ImportError, AttributeError) as err:
            problems.append(f"`{quote}`: {type(err).__name__}: {err}")
            continue
        if call is not None and args:
            params = _parameters(obj)
            missing = [] if params is None else [n for n in _param_names(args)
                                                 if n not in params]
            if missing:
                problems.append(f"`{quote}`: no parameter {missing} in {sorted(params)}")
    assert not problems, "\n".join(problems)


def test_every_quoted_path_exists():
    missing = [q for q in _quotes() if _PATH.match(q)
               and not (REPO / _PATH.match(q).group(1).rstrip("/")).exists()]
    assert not missing, missing


def test_every_module_of_the_package_is_described():
    text = DOC.read_text()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        dotted = ".".join(rel.with_suffix("").parts)
        dotted = dotted.removesuffix(".__init__").removesuffix(".__main__")
        if str(rel) not in text and f"`{dotted}" not in text:
            missing.append(str(rel))
    assert not missing, f"docs/architecture.md does not name: {missing}"


@pytest.mark.parametrize("quote, ok", [
    ("jaxkd.plans.build(config)", True),
    ("jaxkd.plans.build(configuration)", False),
    ("jaxkd.plans.no_such_function", False),
])
def test_the_checks_catch_a_stale_quote(quote, ok):
    match = _NAME.match(quote)
    try:
        obj = _resolve(match.group(1))
    except AttributeError:
        assert not ok
        return
    names = _param_names(match.group(3) or "")
    assert all(n in _parameters(obj) for n in names) == ok
