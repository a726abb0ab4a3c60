"""Subcommands of the `jaxkd` command (`python -m jaxkd.main <command> ...`).

`jaxkd.main.run_main` dispatches on `argv[1]` before absl parses any flag: `train` (or no
command, as before: `jaxkd --config=... --workdir=...`) is `jaxkd.main`'s own flow; the
others live in one small module each (imported by name when chosen) and parse their own
flags (`absl.flags.FlagValues` of their own, so they never meet the training flags).
`grid` and `report` are `python -m jaxkd.grid` and `python -m jaxkd.report`. `jaxkd --help`
or `jaxkd` alone prints `overview()`.
"""

from __future__ import annotations

import importlib
import sys
import textwrap

from jaxkd import models, plans
from jaxkd.cli import configs

# name -> (module under jaxkd.cli, one-line summary)
COMMANDS = {
    "train": ("", "train a config's plan in a workdir, resuming where it stopped "
                  "(also the default: `jaxkd --config=... --workdir=...`)"),
    "grid": ("grid", "a grid file's configs x seeds, one resumable run each, and their "
                     "mean ± std table (`python -m jaxkd.grid`)"),
    "report": ("report", "report.md, analysis.json and figures of finished runs; with "
                         "several workdirs (seeds) their mean ± std aggregate "
                         "(`python -m jaxkd.report`)"),
    "evaluate": ("evaluate", "top-1 / top-5 / ECE of a workdir phase's final checkpoint "
                             "(or a checkpoint) on the workdir's data or another source"),
    "export": ("export", "one self-contained file of a phase: params + model, classes, "
                         "normalisation (for `jaxkd.load_model` and `jaxkd predict`)"),
    "predict": ("predict", "class names and probabilities of images (PNG/JPEG files or a "
                           "folder) with an exported model"),
    "show-config": ("show_config", "the resolved fields and plan of a config file or "
                                   "shipped config name"),
}
HELP_WORDS = ("--help", "-h", "-help", "help", "--helpshort")


def _wrapped(title: str, names) -> str:
    body = textwrap.fill(", ".join(names), width=88, initial_indent="  ",
                         subsequent_indent="  ")
    return f"{title}\n{body}"


def overview() -> str:
    """What `jaxkd --help` prints: commands, methods, models and shipped configs."""
    lines = ["usage: jaxkd <command> [flags]     (or: python -m jaxkd.main <command> ...)",
             "", "commands:"]
    for name, (_, summary) in COMMANDS.items():
        lines += textwrap.wrap(summary, width=88, initial_indent=f"  {name:<13}",
                               subsequent_indent=" " * 15)
    lines += ["`jaxkd <command> --help` lists a command's flags.", "",
              _wrapped("methods (config.method):", sorted(plans.PLANS)), "",
              _wrapped("models (config.model):", models.list_models()), "",
              _wrapped("configs (--config=NAME or --config=configs/NAME.py; "
                       "`jaxkd show-config NAME`):", configs.names()), "",
              "example: jaxkd train --config=quickstart --workdir=/tmp/jaxkd_quickstart"]
    return "\n".join(lines)


def dispatch(argv: list[str]) -> list[str]:
    """Runs a subcommand named by `argv[1]` (and exits), or returns the training argv.

    `train` is dropped from the returned argv; `--config=NAME` becomes the shipped config's
    path; `--smoke` is `--config.smoke=True`. No command and `--help` (or nothing at all)
    prints `overview()`.
    """
    rest = argv[1:]
    if not rest or rest[0] in HELP_WORDS:
        print(overview())
        sys.exit(0)
    if rest[0] in COMMANDS and rest[0] != "train":
        module = importlib.import_module(f"jaxkd.cli.{COMMANDS[rest[0]][0]}")
        sys.exit(module.run([f"jaxkd {rest[0]}", *rest[1:]]) or 0)
    if rest[0] == "train":
        rest = rest[1:]
    elif not rest[0].startswith("-"):
        print(f"FATAL unknown command {rest[0]!r}; commands: {', '.join(COMMANDS)} "
              f"(`jaxkd --help`)", file=sys.stderr)
        sys.exit(2)
    # `--smoke`: any config shrunk to about a minute (`jaxkd.presets.smoke`).
    rest = ["--config.smoke=True" if a == "--smoke" else a for a in rest]
    return [argv[0], *configs.resolve_config_flag(rest)]
