"""jaxkd.cli.evaluate (`jaxkd evaluate`): top-1 / top-5 / ECE of a workdir's phase, on the
README's run (`readme_run`), through the real command and in-process."""

import json
import re

import pytest

from jaxkd.cli import evaluate
from tests.cli.helpers import cli


def test_evaluate_reports_the_runs_own_top1(readme_run):
    root, out = readme_run
    workdir = root / "jaxkd_use"
    results = json.loads((workdir / "results.json").read_text())
    last = results["phases"][-1]
    assert last["name"] == "gen0"
    table = out["evaluate"]
    assert re.search(rf"top-1\s+{last['last_top1']:.4f}", table), table
    assert "top-5" in table and "ECE" in table and "gen0" in table
    # The same through a checkpoint path, as JSON: exactly the run's last evaluation.
    done = cli("evaluate", f"--checkpoint={workdir}/phases/gen0/final", "--json")
    report = json.loads(done.stdout)
    assert report["phase"] == "gen0" and report["num_examples"] == 1000
    assert report["top1"] == pytest.approx(last["last_top1"], abs=1e-6)
    assert report["top5"] == pytest.approx(last["last_top5"], abs=1e-6)
    assert 0.0 <= report["ece"] <= 1.0
    assert not (workdir / "evaluation.json").exists()


def test_evaluate_in_process_names_the_phase_and_its_recorded_top1(readme_run):
    root, _ = readme_run
    workdir = root / "jaxkd_use"
    results = json.loads((workdir / "results.json").read_text())
    out = evaluate.evaluate(workdir)
    assert (out["phase"], out["model"], out["split"], out["source"]) == (
        "gen0", "resnet8", "test", "sample")
    assert out["checkpoint"] == str(workdir / "phases" / "gen0")
    assert out["recorded_last_top1"] == results["phases"][0]["last_top1"]
    # Another device count than the run's: the same weights, float rounding aside.
    assert out["top1"] == pytest.approx(out["recorded_last_top1"], abs=0.005)
    assert out["top1"] <= out["top5"] <= 1.0 and out["ece_bins"] == 15
    train = evaluate.evaluate(workdir, split="train")
    assert train["recorded_last_top1"] is None and train["num_examples"] == 2500


def test_format_table_lines():
    out = {"workdir": "/w", "phase": "gen0", "model": "resnet8", "checkpoint": "/w/p",
           "split": "test", "source": "sample", "num_examples": 10, "top1": 0.5, "top5": 0.9,
           "ece": 0.125, "ece_bins": 15, "recorded_last_top1": 0.5}
    lines = evaluate.format_table(out).splitlines()
    assert lines[1] == "phase      gen0 (resnet8) from /w/p"
    assert lines[3] == "top-1      0.5000   (results.json last_top1 0.5000)"
    assert lines[4] == "top-5      0.9000"
    assert lines[5] == "ECE        0.1250   (15 bins)"
    three = dict(out, top3=0.8, recorded_last_top1=None)
    del three["top5"]
    assert evaluate.format_table(three).splitlines()[3:5] == ["top-1      0.5000",
                                                              "top-3      0.8000"]


def test_locate_finds_the_workdir_of_a_checkpoint(readme_run, tmp_path, capsys):
    root, _ = readme_run
    workdir = root / "jaxkd_use"
    final = str(workdir / "phases" / "gen0" / "final")
    assert evaluate.locate(["jaxkd evaluate", f"--checkpoint={final}"]) == (workdir, final)
    assert evaluate.locate(["jaxkd evaluate", "--workdir", str(workdir)]) == (workdir, "")
    for argv, message in (([], "--workdir=W (or --checkpoint=PATH inside a workdir) is "
                               "required"),
                          ([f"--checkpoint={tmp_path}"], "is not inside a workdir")):
        with pytest.raises(SystemExit) as info:
            evaluate.locate(["jaxkd evaluate", *argv])
        assert info.value.code == 2 and message in capsys.readouterr().err


def test_evaluate_refuses_to_change_more_than_the_data(readme_run, capsys):
    root, _ = readme_run
    with pytest.raises(SystemExit) as info:
        evaluate.run(["jaxkd evaluate", f"--workdir={root / 'jaxkd_use'}",
                      "--config.model=resnet20"])
    assert info.value.code == 2
    assert re.match(r"FATAL --config.model: evaluate changes only the data",
                    capsys.readouterr().err)
