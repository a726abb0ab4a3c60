"""jaxkd.report.report: the report of a tiny finished snapshot-distillation run (files,
tables, numbers; the run of `tests.shared_runs`), and browser-free checks of its output on
hand-written workdirs (issue 20, small output bugs): the text tables align, a partial
report names its method, and the aggregate refuses runs whose configs differ in more than
the seed."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from jaxkd import analysis, report
from jaxkd.report import report as report_lib
from tests.report.helpers import PNG_MAGIC, REPO, _workdir


def test_run_writes_the_report_and_its_figures(sd_workdir):
    for name in ("report.md", "analysis.json", "accuracy.png", "curves.png",
                 "second_class.png"):
        assert (sd_workdir / name).is_file(), name
    for name in ("accuracy.png", "curves.png", "second_class.png"):
        assert (sd_workdir / name).read_bytes()[:8] == PNG_MAGIC


def test_report_has_every_section(sd_workdir):
    text = (sd_workdir / "report.md").read_text()
    for heading in ("## Phases", "## Ensembles", "## Snapshot distillation (test error %)",
                    "## Secondary information", "## Student-teacher agreement",
                    "## Dist^C / Dist^S", "![curves](curves.png)"):
        assert heading in text, heading
    assert "Checkpoint analysis failed" not in text
    assert "| cycle2 | mini_generation | resnet8 | continue | cycle1 |" in text


def test_sd_table_holds_the_errors_of_results_json(sd_workdir):
    results = analysis.load_results(sd_workdir)
    cycles = results["phases"]
    errors = [f"{100 * (1 - p['last_top1']):.2f}" for p in cycles]
    best = f"{100 * (1 - max(p['best_top1'] for p in cycles)):.2f}"
    sd = f"{100 * (1 - results['ensembles']['sd_ensemble']['top1']):.2f}"
    se = f"{100 * (1 - results['ensembles']['snapshot_ensemble']['top1']):.2f}"
    row = f"| resnet8 | {errors[0]} | {errors[1]} | {best} | {se} | {sd} |"
    assert row in (sd_workdir / "report.md").read_text()


def test_analysis_json_is_consistent_with_the_logits(sd_workdir, sd_evaluation):
    summary = json.loads((sd_workdir / "analysis.json").read_text())
    stats = summary["phases"]["cycle2"]
    logits = sd_evaluation.logits["cycle2"]
    assert stats["test_top1"] == pytest.approx(analysis.accuracy(logits, sd_evaluation.labels))
    np.testing.assert_allclose(stats["test_confidences"],
                               analysis.topk_confidences(logits, 4), rtol=1e-9)
    (agree,) = summary["agreement"]
    assert (agree["student"], agree["teacher"]) == ("cycle2", "cycle1")
    assert agree["top1_agreement"] == pytest.approx(
        analysis.top1_agreement(logits, sd_evaluation.logits["cycle1"]))
    assert "vehicles / animals" in summary["coarse_source"]
    assert set(summary["distances"]["test"]) == {"cycle1", "cycle2"}
    assert "sd_ensemble[cycle1..cycle2]" in summary["ensembles"]


def test_curves_mark_the_restart(sd_workdir):
    series, bounds = report.curve_series(report.read_metrics(sd_workdir),
                                         report.load_plan(sd_workdir))
    assert bounds == [dict(epoch=1, restart=True, name="cycle2")]
    assert series[1]["eval_epoch"] == [2]
    assert min(series[1]["train_epoch"]) > 1.0 and max(series[0]["train_epoch"]) <= 1.0


def test_aggregate_of_two_runs(sd_workdir, tmp_path):
    first_dir, second = tmp_path / "seed0", tmp_path / "seed1"
    shutil.copytree(sd_workdir, first_dir)
    shutil.copytree(sd_workdir, second)
    results = json.loads((second / "results.json").read_text())
    results["phases"][0]["best_top1"] = 0.5
    (second / "results.json").write_text(json.dumps(results))
    out = tmp_path / "agg"
    paths = report.write_report([first_dir, second], out, evaluate=False)
    assert paths[-1] == out / "aggregate.md" and (out / "aggregate_accuracy.png").is_file()
    first = analysis.load_results(sd_workdir)["phases"][0]["best_top1"]
    stat = analysis.mean_std([first, 0.5])
    text = paths[-1].read_text()
    assert f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}" in text
    assert "sd_ensemble[cycle1..cycle2]" in text    # prefix ensembles from analysis.json
    # Not re-evaluated: the tables of the earlier evaluated report (analysis.json) remain.
    assert "## Secondary information" in (second / "report.md").read_text()


def test_report_of_an_unfinished_run_reads_metrics(sd_workdir, tmp_path):
    copy = tmp_path / "partial"
    shutil.copytree(sd_workdir, copy)
    (copy / "results.json").unlink()
    (copy / "analysis.json").unlink()
    text = report.write_report([copy], evaluate=False)[0].read_text()
    evals = [m for m in report.read_metrics(copy) if m["kind"] == "eval"]
    for m in evals:
        assert f"| {m['phase']} | mini_generation |" in text
        assert f"{100 * m['top1']:.2f} (1)" in text
    assert "## Secondary information" not in text and "second_class.png" not in text


def test_command_line(sd_workdir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(sd_workdir, copy)
    (copy / "report.md").unlink()
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-m", "jaxkd.report", f"--workdir={copy}", "--noevaluate"],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(copy / "report.md") in proc.stdout
    assert "## Snapshot distillation" in (copy / "report.md").read_text()


# -- hand-written workdirs ---------------------------------------------------------------


def test_results_table_columns_align():
    results = json.loads(json.dumps(dict(
        phases=[dict(name="cycle1", role="mini_generation", model="densenet_bc190_k40",
                     best_top1=0.5, last_top1=0.4)],
        ensembles={"snapshot_ensemble": dict(members=["cycle1", "cycle2", "cycle3"],
                                             top1=0.55),
                   "sd_ensemble[cycle1..cycle3]": dict(members=["cycle1"], top1=0.6)})))
    lines = report.format_results(results).splitlines()
    header = lines[0]
    starts = [header.index(h) for h in ("role", "model / members")]
    ends = [header.index(h) + len(h) for h in ("best top-1", "last top-1")]
    for line in lines[1:]:
        for start in starts:                  # text columns start where their header does
            assert line[start - 2:start] == "  " and line[start] != " ", (line, start)
        for end in ends:                      # number columns end where their header does
            assert line[end - 1] != " " and line[end:end + 2] in ("  ", ""), (line, end)
    assert "snapshot_ensemble  " in lines[2]


def test_a_partial_report_names_its_method_and_draws(tmp_path):
    work = _workdir(tmp_path / "run", finished=False)
    text = report.write_report([work], evaluate=False)[0].read_text()
    assert "method ?" not in text and "`?`" not in text
    assert "method `snapshot_distillation` (unfinished" in text
    for png in ("accuracy.png", "curves.png"):
        assert (work / png).read_bytes()[:8] == PNG_MAGIC


def test_aggregate_refuses_runs_whose_configs_differ_in_more_than_the_seed(tmp_path):
    a = _workdir(tmp_path / "seed0", finished=True)
    b = _workdir(tmp_path / "seed1", finished=True, seed=1, progress_bar=False)
    c = _workdir(tmp_path / "lr", finished=True, **{"schedule.base_lr": 0.2})
    assert report.config_differences([a, b]) == {}
    report.write_report([a, b], tmp_path / "agg", evaluate=False)     # seeds: fine
    with pytest.raises(report.ConfigsDifferError, match=r"config.schedule.base_lr: 0.1 -> 0.2"):
        report.write_report([a, c], tmp_path / "agg2", evaluate=False)
    assert not (tmp_path / "agg2").exists()    # refused before anything was written
    path = report.write_report([a, c], tmp_path / "agg3", evaluate=False,
                               allow_config_diff=True)[-1]
    assert "differs from the first in more than the seed" in path.read_text()
    done = subprocess.run([sys.executable, "-m", "jaxkd.report", f"--workdir={a}",
                           f"--workdir={c}", "--noevaluate", f"--out={tmp_path / 'agg4'}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "config.schedule.base_lr: 0.1 -> 0.2" in done.stderr


def test_md_table_and_text_table():
    assert report_lib.md_table(["a", "bb"], [[1, "x"], [22, None]]).splitlines() == [
        "| a | bb |", "|---|---|", "| 1 | x |", "| 22 | None |"]
    text = report_lib.text_table(["name", "n"], [["long name", 1], ["x", 100]],
                                 right=[False, True])
    assert text.splitlines() == ["name         n", "long name    1", "x          100"]


def test_pct_of_a_fraction_and_of_nothing():
    assert (report_lib.pct(0.12345), report_lib.pct(0.5, 1), report_lib.pct(None)) == (
        "12.35", "50.0", "-")


def test_read_metrics_and_load_plan_of_a_handwritten_workdir(tmp_path):
    work = _workdir(tmp_path / "run", finished=True)
    metrics = report.read_metrics(work)
    assert [(m["phase"], m["kind"]) for m in metrics] == [
        ("cycle1", "train"), ("cycle1", "eval"), ("cycle2", "train"), ("cycle2", "eval")]
    assert [p.name for p in report.load_plan(work)] == ["cycle1", "cycle2"]
    assert report.read_config(work)["method"] == "snapshot_distillation"
    assert report.read_metrics(tmp_path) == []                   # no metrics.jsonl: none


def test_config_differences_name_the_workdir_and_the_field(tmp_path):
    a = _workdir(tmp_path / "a", finished=True)
    b = _workdir(tmp_path / "b", finished=True, num_epochs=4)
    diffs = report.config_differences([a, b])
    assert diffs == {str(b): ["config.num_epochs: 2 -> 4"]}
    assert report.check_comparable([a, b], allow_config_diff=True) == diffs
    with pytest.raises(report.ConfigsDifferError, match="config.num_epochs: 2 -> 4"):
        report.check_comparable([a, b])
