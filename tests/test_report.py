"""The report of a tiny finished snapshot-distillation run: files, tables, numbers."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from jaxkd import analysis, report
from jaxkd import run as run_lib
from jaxkd.config import default_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_sd_config():
    """ResNet-8 on 160 sample images, 2 mini-generations of 1 epoch each, T = 2."""
    c = default_config()
    c.method = "snapshot_distillation"
    c.model = "resnet8"
    c.data.source = "sample"
    c.data.train_per_class = 16
    c.batch_size = 32
    c.eval_batch_size = 200
    c.num_epochs = 2
    c.snapshot.cycles = 2
    c.snapshot.temperature = 2.0
    c.log_every_steps = 2
    c.progress_bar = False
    return c


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One finished run shared by every test here (its report written by run() itself)."""
    path = tmp_path_factory.mktemp("sd_tiny")
    run_lib.run(tiny_sd_config(), path)
    return path


@pytest.fixture(scope="module")
def evaluation(workdir):
    return analysis.evaluate_workdir(workdir, "test", features=True)


def test_run_writes_the_report_and_its_figures(workdir):
    for name in ("report.md", "analysis.json", "accuracy.png", "curves.png",
                 "second_class.png"):
        assert (workdir / name).is_file(), name
    for name in ("accuracy.png", "curves.png", "second_class.png"):
        assert (workdir / name).read_bytes()[:8] == PNG_MAGIC


def test_report_has_every_section(workdir):
    text = (workdir / "report.md").read_text()
    for heading in ("## Phases", "## Ensembles", "## Snapshot distillation (test error %)",
                    "## Secondary information", "## Student-teacher agreement",
                    "## Dist^C / Dist^S", "![curves](curves.png)"):
        assert heading in text, heading
    assert "Checkpoint analysis failed" not in text
    assert "| cycle2 | mini_generation | resnet8 | continue | cycle1 |" in text


def test_sd_table_holds_the_errors_of_results_json(workdir):
    results = analysis.load_results(workdir)
    cycles = results["phases"]
    errors = [f"{100 * (1 - p['last_top1']):.2f}" for p in cycles]
    best = f"{100 * (1 - max(p['best_top1'] for p in cycles)):.2f}"
    sd = f"{100 * (1 - results['ensembles']['sd_ensemble']['top1']):.2f}"
    se = f"{100 * (1 - results['ensembles']['snapshot_ensemble']['top1']):.2f}"
    row = f"| resnet8 | {errors[0]} | {errors[1]} | {best} | {se} | {sd} |"
    assert row in (workdir / "report.md").read_text()


def test_evaluate_workdir_matches_the_run(workdir, evaluation):
    results = analysis.load_results(workdir)
    assert evaluation.names == ["cycle1", "cycle2"]
    assert evaluation.logits["cycle1"].shape == (1000, 10)
    assert evaluation.features["cycle2"].shape[0] == 1000
    for phase in results["phases"]:   # the final checkpoint is the last evaluated state
        acc = analysis.accuracy(evaluation.logits[phase["name"]], evaluation.labels)
        assert acc == pytest.approx(phase["last_top1"], abs=1e-9)
    scales = analysis.sd_ensemble_scales(2.0, 2)
    sd = analysis.ensemble_of(evaluation.logits, evaluation.labels, ["cycle1", "cycle2"],
                              scales)
    assert sd["top1"] == pytest.approx(results["ensembles"]["sd_ensemble"]["top1"])
    # Only the run wrote TensorBoard events: evaluating (report, fixture) wrote none.
    assert len(list((workdir / "tensorboard").glob("events*"))) == 1


def test_analysis_json_is_consistent_with_the_logits(workdir, evaluation):
    summary = json.loads((workdir / "analysis.json").read_text())
    stats = summary["phases"]["cycle2"]
    logits = evaluation.logits["cycle2"]
    assert stats["test_top1"] == pytest.approx(analysis.accuracy(logits, evaluation.labels))
    np.testing.assert_allclose(stats["test_confidences"],
                               analysis.topk_confidences(logits, 4), rtol=1e-9)
    (agree,) = summary["agreement"]
    assert (agree["student"], agree["teacher"]) == ("cycle2", "cycle1")
    assert agree["top1_agreement"] == pytest.approx(
        analysis.top1_agreement(logits, evaluation.logits["cycle1"]))
    assert "vehicles / animals" in summary["coarse_source"]
    assert set(summary["distances"]["test"]) == {"cycle1", "cycle2"}
    assert "sd_ensemble[cycle1..cycle2]" in summary["ensembles"]


def test_curves_mark_the_restart(workdir):
    series, bounds = report.curve_series(report.read_metrics(workdir),
                                         report.load_plan(workdir))
    assert bounds == [dict(epoch=1, restart=True, name="cycle2")]
    assert series[1]["eval_epoch"] == [2]
    assert min(series[1]["train_epoch"]) > 1.0 and max(series[0]["train_epoch"]) <= 1.0


def test_aggregate_of_two_runs(workdir, tmp_path):
    first_dir, second = tmp_path / "seed0", tmp_path / "seed1"
    shutil.copytree(workdir, first_dir)
    shutil.copytree(workdir, second)
    results = json.loads((second / "results.json").read_text())
    results["phases"][0]["best_top1"] = 0.5
    (second / "results.json").write_text(json.dumps(results))
    out = tmp_path / "agg"
    paths = report.write_report([first_dir, second], out, evaluate=False)
    assert paths[-1] == out / "aggregate.md" and (out / "aggregate_accuracy.png").is_file()
    first = analysis.load_results(workdir)["phases"][0]["best_top1"]
    stat = analysis.mean_std([first, 0.5])
    text = paths[-1].read_text()
    assert f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}" in text
    assert "sd_ensemble[cycle1..cycle2]" in text    # prefix ensembles from analysis.json
    # Not re-evaluated: the tables of the earlier evaluated report (analysis.json) remain.
    assert "## Secondary information" in (second / "report.md").read_text()


def test_report_of_an_unfinished_run_reads_metrics(workdir, tmp_path):
    copy = tmp_path / "partial"
    shutil.copytree(workdir, copy)
    (copy / "results.json").unlink()
    (copy / "analysis.json").unlink()
    text = report.write_report([copy], evaluate=False)[0].read_text()
    evals = [m for m in report.read_metrics(copy) if m["kind"] == "eval"]
    for m in evals:
        assert f"| {m['phase']} | mini_generation |" in text
        assert f"{100 * m['top1']:.2f} (1)" in text
    assert "## Secondary information" not in text and "second_class.png" not in text


def test_command_line(workdir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy)
    (copy / "report.md").unlink()
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-m", "jaxkd.report", f"--workdir={copy}", "--noevaluate"],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(copy / "report.md") in proc.stdout
    assert "## Snapshot distillation" in (copy / "report.md").read_text()
