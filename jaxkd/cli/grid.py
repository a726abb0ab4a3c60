"""`jaxkd grid`: a grid of configs over seeds, resumably, with a mean ± std table.

    jaxkd grid --grid=grids/cpu_cifar100.py --root=DIR [--seeds=3] [--only=a,b]
               [--summary_only] [--noreport] [--in_process]

The same command as `python -m jaxkd.grid` (see `jaxkd.grid`): each (config, seed) runs in
its own workdir `DIR/<name>/seed<k>`, one child process each; finished runs are skipped
and an unfinished one resumes, so rerunning the command continues the grid.
`DIR/summary.md` and `DIR/summary.json` hold the table. Exit code 1 when a run failed.
"""

from __future__ import annotations

from jaxkd import grid
from jaxkd.cli import common

USAGE = __doc__


def run(argv: list[str]) -> int:
    fv = common.new_flags()
    grid.define_flags(fv, child=False)   # children run `python -m jaxkd.grid --run_one`
    rest = common.parse(fv, argv, USAGE)
    if rest:
        common.fail(f"unexpected arguments: {rest}")
    return grid.main_with(fv)
