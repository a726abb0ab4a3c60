"""`jaxkd show-config`: the resolved fields of a config, and the plan it runs.

    jaxkd show-config CONFIG [--config.FIELD=VALUE ...] [--json]

CONFIG: a config file (`configs/sd_resnet56.py`) or a shipped config's name
(`sd_resnet56`). Overrides apply as in `jaxkd train`. Prints every field as
`field = value` (`--json`: the config as JSON), then the plan's phases.
"""

from __future__ import annotations

import ast
import json
import sys

from absl import flags
from ml_collections import config_flags

from jaxkd import plans
from jaxkd.cli import common, configs

USAGE = __doc__


def flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += flatten(value, name + ".")
        else:
            out.append((name, value))
    return out


def plan_lines(config) -> list[str]:
    try:
        plan = plans.build(config)
    except Exception as err:  # pylint: disable=broad-except  # still show the fields
        return [f"plan: not buildable: {type(err).__name__}: {str(err)[:300]}"]
    lines = [f"plan ({config.method}, {len(plan)} phases):"]
    for i, p in enumerate(plan, 1):
        teacher = "+".join(p.teacher.phases) or p.teacher.checkpoint if p.teacher else "-"
        lines.append(f"  {i}. {p.name:<12} {p.role:<16} {p.model:<20} loss={p.loss:<22} "
                     f"teacher={teacher or '-'} epochs={p.num_epochs} init={p.init}")
    return lines


def _docstring(path: str) -> str:
    try:
        return ast.get_docstring(ast.parse(open(path).read())) or ""
    except (OSError, SyntaxError, ValueError):
        return ""


def run(argv: list[str]) -> int:
    args = list(argv)
    named = next((i for i, a in enumerate(args[1:], 1) if not a.startswith("-")), None)
    if named is not None:
        args[named] = f"--config={args[named]}"
    elif not common.helping(args) and not any(a.startswith("--config=") for a in args):
        common.fail("name a config: jaxkd show-config configs/sd_resnet56.py (or a "
                    f"shipped name: {', '.join(configs.names()[:4])}, ...)")
    args = args[:1] + configs.resolve_config_flag(args[1:])
    fv = common.new_flags()
    # sys_argv: the `--config.FIELD=value` overrides are read from these arguments (by
    # default ml_collections looks for them in sys.argv).
    config_flags.DEFINE_config_file("config", None, "A config file or shipped name (also "
                                    "the first positional argument).", flag_values=fv,
                                    lock_config=True, sys_argv=args)
    flags.DEFINE_bool("json", False, "Print the config as JSON (no plan).", flag_values=fv)
    common.parse(fv, args, USAGE)
    config = fv["config"].value
    path = next(a.split("=", 1)[1] for a in args if a.startswith("--config="))
    if fv["json"].value:
        print(json.dumps(config.to_dict(), indent=2, default=str))
        return 0
    module_doc = _docstring(path.partition(":")[0])
    lines = [f"# {path}"]
    lines += [f"# {module_doc.strip().splitlines()[0]}"] if module_doc.strip() else []
    lines += [f"{name} = {value!r}" for name, value in flatten(config.to_dict())]
    print("\n".join(lines + [""] + plan_lines(config)))
    sys.stdout.flush()
    return 0
