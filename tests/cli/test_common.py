"""jaxkd.cli.common, what the subcommands share: their own flags, one-line errors and exit
codes, and finding a trained phase in a workdir (hand-made workdir layouts: nothing is
trained)."""

import json

import pytest
from absl import flags

from jaxkd import plans
from jaxkd.cli import common
from jaxkd.config import default_config


def _workdir(path, finished=("gen0",)):
    """A born-again workdir (gen0, gen1) whose `finished` phases have a final step folder."""
    config = default_config()
    config.method, config.generations, config.model = "born_again", 1, "resnet8"
    path.mkdir(parents=True)
    (path / "config.json").write_text(config.to_json())
    for name in ("gen0", "gen1"):
        (path / "phases" / name / "ckpt").mkdir(parents=True)
    for name in finished:
        (path / "phases" / name / "final" / "8").mkdir(parents=True)
    return path, plans.build(config)


def _exit(fn, *args):
    with pytest.raises(SystemExit) as info:
        fn(*args)
    return info.value.code


# -- finding the trained phase ------------------------------------------------------------
def test_choose_phase_defaults_to_the_last_finished_one(tmp_path):
    work, plan = _workdir(tmp_path / "w", finished=("gen0",))
    assert common.choose_phase(plan, work, "").name == "gen0"
    (work / "phases" / "gen1" / "final" / "16").mkdir(parents=True)
    assert common.choose_phase(plan, work, "").name == "gen1"
    assert common.choose_phase(plan, work, "gen0").name == "gen0"   # named: as asked


def test_choose_phase_errors_name_the_flag_and_the_phases(tmp_path, capsys):
    work, plan = _workdir(tmp_path / "w", finished=())
    assert _exit(common.choose_phase, plan, work, "gen7") == 2
    assert capsys.readouterr().err == ("FATAL --phase=gen7: the run has no such phase; its "
                                       "phases: gen0, gen1\n")
    assert _exit(common.choose_phase, plan, work, "") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"FATAL --workdir={work}: no phase has finished yet")
    assert err.rstrip().endswith("its phases: gen0, gen1")


def test_workdir_of_checkpoint_walks_up_to_the_workdir(tmp_path, monkeypatch):
    work, _ = _workdir(tmp_path / "w")
    final = work / "phases" / "gen0" / "final" / "8"
    assert common.workdir_of_checkpoint(str(final)) == work
    assert common.workdir_of_checkpoint(str(work)) == work
    assert common.workdir_of_checkpoint(str(tmp_path)) is None
    (tmp_path / "loose").mkdir()
    assert common.workdir_of_checkpoint(str(tmp_path / "loose")) is None
    monkeypatch.chdir(work / "phases")                              # relative paths too
    assert common.workdir_of_checkpoint("gen0/final") == work


def test_phase_of_checkpoint(tmp_path):
    work, _ = _workdir(tmp_path / "w")
    assert common.phase_of_checkpoint(work, str(work / "phases" / "gen1" / "final" / "8")) \
        == "gen1"
    assert common.phase_of_checkpoint(work, str(work / "phases" / "gen0")) == "gen0"
    assert common.phase_of_checkpoint(work, str(work / "phases")) is None
    assert common.phase_of_checkpoint(work, str(tmp_path / "elsewhere" / "final")) is None


def test_read_config_and_results_of_a_workdir(tmp_path, capsys):
    work, _ = _workdir(tmp_path / "w")
    assert common.read_config(work).method == "born_again"
    assert common.read_results(work) == {}
    (work / "results.json").write_text(json.dumps({"phases": []}))
    assert common.read_results(work) == {"phases": []}
    assert _exit(common.read_config, tmp_path) == 2
    assert capsys.readouterr().err.startswith(f"FATAL --workdir={tmp_path}: no config.json")


def test_data_stats_prefer_what_results_json_recorded(tmp_path):
    work, _ = _workdir(tmp_path / "w")
    record = {"class_names": ["a", "b"], "num_classes": 2, "mean": [0.5] * 3,
              "std": [0.25] * 3, "image_shape": [8, 8, 3]}
    (work / "results.json").write_text(json.dumps({"data": record}))
    assert common.data_stats(work, common.read_config(work)) == dict(record, recorded=True)


def test_data_stats_computed_from_the_data_when_not_recorded(tmp_path):
    work, _ = _workdir(tmp_path / "w")
    config = common.read_config(work)
    config.data.source = "sample"
    stats = common.data_stats(work, config)
    assert stats["recorded"] is False and stats["num_classes"] == 10
    assert stats["class_names"][:2] == ["airplane", "automobile"]
    assert stats["image_shape"] == [32, 32, 3] and len(stats["mean"]) == 3
    assert all(0 < m < 1 for m in stats["mean"])


# -- flags and errors ------------------------------------------------------------------------
def _flags():
    fv = common.new_flags()
    flags.DEFINE_string("name", "x", "a name", flag_values=fv)
    return fv


def test_parse_returns_the_positionals_and_sets_the_flags():
    fv = _flags()
    assert common.parse(fv, ["prog", "--name=y", "a", "b"], "usage") == ["a", "b"]
    assert fv["name"].value == "y"
    assert "name" not in flags.FLAGS           # a registry of its own


def test_parse_of_a_bad_flag_is_exit_code_1(capsys):
    assert _exit(common.parse, _flags(), ["prog", "--nmae=y"], "usage") == 1
    err = capsys.readouterr().err
    assert err.startswith("FATAL Flags parsing error:") and "nmae" in err
    assert "Pass --help to see prog's flags." in err


@pytest.mark.parametrize("word", ["--help", "-h", "--helpshort"])
def test_help_prints_the_usage_and_the_flags(word, capsys):
    assert common.helping(["prog", word]) and not common.helping(["--help"])
    assert _exit(common.parse, _flags(), ["prog", word], "  prog: does things\n") == 0
    out = capsys.readouterr().out
    assert out.startswith("prog: does things\n\nflags:") and "--name" in out


def test_fail_is_one_line_and_the_code(capsys):
    assert _exit(common.fail, "it broke") == 2
    assert _exit(common.fail, "gone", 3) == 3
    assert capsys.readouterr().err == "FATAL it broke\nFATAL gone\n"


def test_guarded_turns_known_failures_into_one_line(capsys):
    assert common.guarded(lambda: None) == 0
    assert common.guarded(lambda: 4) == 4

    def bad_input():
        raise ValueError("config.model: no such   model\n  (known: a, b)")
    assert _exit(common.guarded, bad_input) == 2
    assert capsys.readouterr().err == "FATAL config.model: no such model (known: a, b)\n"

    def interrupted():
        raise KeyboardInterrupt
    assert _exit(common.guarded, interrupted) == 130

    def bug():
        raise RuntimeError("a bug")
    with pytest.raises(RuntimeError, match="a bug"):       # unknown: the traceback stays
        common.guarded(bug)
