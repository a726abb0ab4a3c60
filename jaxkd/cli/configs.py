"""`--config=NAME`: the shipped configs by name, from a checkout or an installed package.

A `--config` value that is an existing file is used as given. Otherwise a bare name
(`sd_resnet56` or `sd_resnet56.py`) is looked up in `./configs/` (the current directory,
a checkout), then where the package has its configs: a wheel installs the repository's
top-level `configs/` as `jaxkd/configs/` (pyproject's `package-dir`), an editable install
or a checkout has them beside the package.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import pathlib
import sys

_PACKAGE = pathlib.Path(__file__).resolve().parents[1]
# A wheel: jaxkd/configs/; an editable install or a checkout: configs/ beside jaxkd/.
PACKAGE_CONFIGS = next((d for d in (_PACKAGE / "configs", _PACKAGE.parent / "configs")
                        if d.is_dir()), _PACKAGE / "configs")


def _search_dirs() -> list[pathlib.Path]:
    return [pathlib.Path.cwd() / "configs", PACKAGE_CONFIGS]


def names() -> list[str]:
    """Config names resolvable by `resolve` (checkout and package), sorted."""
    found = set()
    for folder in _search_dirs():
        if folder.is_dir():
            found |= {p.stem for p in folder.glob("*.py") if not p.name.startswith("_")}
    return sorted(found)


def resolve(value: str) -> str | None:
    """The file `value` names (itself if it exists, else a shipped config), or None.

    ml_collections' `path:argument` form keeps its argument.
    """
    path, sep, arg = value.partition(":")
    if pathlib.Path(path).is_file():
        return value
    name = pathlib.Path(path).name
    stem = name[:-3] if name.endswith(".py") else name
    if "/" in path and pathlib.Path(path).parent.name != "configs":
        return None
    for folder in _search_dirs():
        candidate = folder / f"{stem}.py"
        if candidate.is_file() and not stem.startswith("_"):
            return f"{candidate}{sep}{arg}"
    return None


def missing(value: str) -> str:
    """One line for a `--config` that names no file and no shipped config."""
    return (f"--config={value}: no such file and no shipped config of that name; shipped: "
            f"{', '.join(names())} (`jaxkd --help`)")


def resolve_config_flag(args: list[str]) -> list[str]:
    """`args` with a `--config=NAME` / `--config NAME` replaced by the config's path.

    A value naming nothing is one line on stderr and exit code 2.
    """
    out, i = list(args), 0
    while i < len(out):
        arg = out[i]
        if arg == "--":
            break
        if arg.startswith("--config="):
            value, pos, prefix = arg.split("=", 1)[1], i, "--config="
        elif arg == "--config" and i + 1 < len(out):
            value, pos, prefix = out[i + 1], i + 1, ""
        else:
            i += 1
            continue
        found = resolve(value)
        if found is None:
            print(f"FATAL {missing(value)}", file=sys.stderr)
            sys.exit(2)
        out[pos] = prefix + found
        i = pos + 1
    return out


def load_config_source(module_name: str, module_path: str):
    """ml_collections' config-file loader, without the deprecated `loader.load_module()`
    (a DeprecationWarning since Python 3.10, slated for removal): same module, same
    `sys.modules` entry, through `exec_module`."""
    loader = importlib.machinery.SourceFileLoader(module_name, module_path)
    spec = importlib.util.spec_from_file_location(module_name, module_path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module
