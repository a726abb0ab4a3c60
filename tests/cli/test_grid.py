"""jaxkd.cli.grid (`jaxkd grid`): the command of `python -m jaxkd.grid`, on the tiny grid of
`tests.shared_runs`."""

import subprocess
import sys

import pytest

from tests.cli.helpers import REPO


@pytest.mark.parametrize("command", [["-m", "jaxkd.grid"], ["-m", "jaxkd.main", "grid"]])
def test_help_lists_the_flags_but_not_the_child_mode(command):
    """`python -m jaxkd.grid --help` and `jaxkd grid --help`: absl flags; `--run_one` (the
    child processes' mode) stays out of the help."""
    out = subprocess.run([sys.executable, *command, "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    # absl's app.run exits 1 after --help (as `python -m jaxkd.report --help`); the
    # `jaxkd` subcommands exit 0.
    assert out.returncode == (1 if command[-1] == "jaxkd.grid" else 0), out.stderr
    listed = out.stdout.split("\nflags:", 1)[1]
    for flag in ("--grid", "--root", "--seeds", "--only", "--[no]report", "--[no]in_process",
                 "--[no]pack_seeds", "--[no]summary_only"):
        assert flag in listed, flag
    assert "run_one" not in listed


def test_cli_grid_summary_only(grid_root, grid_file):
    """`jaxkd grid --summary_only` rewrites the table from the finished runs."""
    from jaxkd.cli import grid as grid_command
    (grid_root / "summary.md").unlink()
    assert grid_command.run(["jaxkd grid", f"--grid={grid_file}", f"--root={grid_root}",
                             "--seeds=2", "--summary_only", "--noreport"]) == 0
    assert "snapshot_ensemble" in (grid_root / "summary.md").read_text()


def test_cli_grid_refuses_positional_arguments(capsys):
    from jaxkd.cli import grid as grid_command
    with pytest.raises(SystemExit) as info:
        grid_command.run(["jaxkd grid", "--grid=g.py", "--root=r", "extra"])
    assert info.value.code == 2
    assert capsys.readouterr().err == "FATAL unexpected arguments: ['extra']\n"
