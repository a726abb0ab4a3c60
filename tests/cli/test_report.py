"""jaxkd.cli.report (`jaxkd report`): the command of `python -m jaxkd.report`."""

import pytest

from jaxkd.cli import report as report_command
from tests.cli.helpers import cli
from tests.report.helpers import _workdir


def test_report_is_the_command_of_jaxkd_report(readme_run):
    """`jaxkd report` writes what `python -m jaxkd.report` writes and prints its path."""
    root, _ = readme_run
    workdir = root / "jaxkd_use"
    done = cli("report", f"--workdir={workdir}", "--noevaluate")
    assert done.stdout.split() == [str(workdir / "report.md")]
    assert "gen0" in (workdir / "report.md").read_text()
    missing = cli("report", check=False)
    assert missing.returncode == 1 and "--workdir" in missing.stderr


def test_report_in_process_prints_the_paths_it_wrote(tmp_path, capsys):
    a = _workdir(tmp_path / "seed0", finished=True)
    b = _workdir(tmp_path / "seed1", finished=True, seed=1)
    assert report_command.run(["jaxkd report", f"--workdir={a}", f"--workdir={b}",
                               "--noevaluate", f"--out={tmp_path / 'agg'}"]) == 0
    assert capsys.readouterr().out.split() == [
        str(a / "report.md"), str(b / "report.md"), str(tmp_path / "agg" / "aggregate.md")]


def test_report_of_configs_that_differ_is_one_line_and_exit_code_2(tmp_path, capsys):
    a = _workdir(tmp_path / "a", finished=True)
    b = _workdir(tmp_path / "b", finished=True, **{"schedule.base_lr": 0.2})
    with pytest.raises(SystemExit) as info:
        report_command.run(["jaxkd report", f"--workdir={a}", f"--workdir={b}",
                            "--noevaluate"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("FATAL refusing to average") and "config.schedule.base_lr" in err
    assert report_command.run(["jaxkd report", f"--workdir={a}", f"--workdir={b}",
                               "--noevaluate", "--allow_config_diff"]) == 0


def test_report_refuses_positional_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        report_command.run(["jaxkd report", f"--workdir={tmp_path}", "extra"])
    assert info.value.code == 2
    assert capsys.readouterr().err == "FATAL unexpected arguments: ['extra']\n"
