"""`python -m jaxkd.report`: the same command as `jaxkd report` (`jaxkd.cli.report`)."""

import sys

from jaxkd.cli import report as report_cli

if __name__ == "__main__":
    sys.exit(report_cli.run(["python -m jaxkd.report", *sys.argv[1:]]))
