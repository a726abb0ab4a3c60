"""`jaxkd report`: markdown + PNG report of finished runs (see `jaxkd.report`).

    jaxkd report --workdir=W [--workdir=W2 ...] [--out=DIR] [--noevaluate]
                 [--allow_config_diff]

The same command as `python -m jaxkd.report`: each workdir receives `report.md`,
`analysis.json` and its figures; with several workdirs (seeds of one config) also an
aggregate with mean ± std in `--out` (default: the first workdir). Workdirs whose configs
differ in more than the seed are refused unless `--allow_config_diff`.
"""

from __future__ import annotations

import sys

from absl import flags

from jaxkd import report
from jaxkd.cli import common

USAGE = __doc__


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_multi_string("workdir", None, "Run directory; repeat for several runs.",
                              flag_values=fv)
    flags.DEFINE_string("out", None, "Directory of the aggregate (default: first workdir).",
                        flag_values=fv)
    flags.DEFINE_bool("evaluate", True, "Re-evaluate the final checkpoints.",
                      flag_values=fv)
    flags.DEFINE_bool("allow_config_diff", False, "Average runs whose configs differ in "
                      "more than the seed (default: refuse).", flag_values=fv)
    flags.mark_flags_as_required(["workdir"], flag_values=fv)


def run(argv: list[str]) -> int:
    fv = common.new_flags()
    define_flags(fv)
    rest = common.parse(fv, argv, USAGE)
    if rest:
        common.fail(f"unexpected arguments: {rest}")
    common.setup_logging()

    def body():
        try:
            paths = report.write_report(fv["workdir"].value, fv["out"].value,
                                        evaluate=fv["evaluate"].value,
                                        allow_config_diff=fv["allow_config_diff"].value)
        except report.ConfigsDifferError as err:
            common.fail(str(err))
        for path in paths:
            print(path)
        sys.stdout.flush()
    return common.guarded(body)
