"""Browser-free checks of the report's output (issue 20, small output bugs): the figures
are rendered with matplotlib's Agg canvas and their axes inspected before saving, the
text tables align, a partial report names its method, and the aggregate refuses runs
whose configs differ in more than the seed. No training: hand-written workdirs."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxkd import report
from jaxkd.report import figures
from jaxkd.config import default_config
from tests.helpers import set_fields

REPO = pathlib.Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sd_config(**changes) -> dict:
    c = default_config()
    c.method, c.model, c.num_epochs = "snapshot_distillation", "resnet8", 2
    c.snapshot.cycles = 2
    c.schedule.name, c.schedule.boundaries = "cosine", ()
    return json.loads(set_fields(c, **changes).to_json())


def _metrics() -> list[dict]:
    """One train record and one evaluation per phase (one epoch per mini-generation)."""
    out = []
    for i, name in enumerate(("cycle1", "cycle2")):
        out.append(dict(phase=name, kind="train", step=5 * (i + 1), loss=2.0 - i * 0.3))
        out.append(dict(phase=name, kind="eval", step=5 * (i + 1), epoch=i + 1,
                        loss=1.9 - i * 0.3, top1=0.3 + 0.1 * i, top5=0.8))
    return out


def _workdir(path: pathlib.Path, *, finished: bool, **changes) -> pathlib.Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(_sd_config(**changes)))
    (path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in _metrics()))
    if finished:
        phases = [dict(name=n, role="mini_generation", model="resnet8", best_top1=t,
                       last_top1=t, best_top5=0.8, last_top5=0.8, best_epoch=i + 1,
                       epochs=1, wall_time=1.0) for i, (n, t) in enumerate(
                           (("cycle1", 0.3), ("cycle2", 0.4)))]
        ens = {"snapshot_ensemble": dict(members=["cycle1", "cycle2"], top1=0.41, top5=0.8),
               "sd_ensemble": dict(members=["cycle1", "cycle2"], top1=0.42, top5=0.8)}
        (path / "results.json").write_text(json.dumps(dict(
            method="snapshot_distillation", phases=phases, ensembles=ens,
            run_wall_time=2.0)))
    return path


def _drawn_points(ax) -> list[int]:
    """Points each visible line draws: a one-point line needs a marker to be seen."""
    out = []
    for line in ax.get_lines():
        x = np.asarray(line.get_xdata(), float)
        visible = np.isfinite(x).sum()
        if visible == 1 and line.get_marker() in (None, "None", "", " "):
            visible = 0
        out.append(int(visible))
    return out


def test_curves_with_one_point_per_phase_are_drawn(tmp_path):
    work = _workdir(tmp_path / "run", finished=True)
    series, bounds = report.curve_series(report.read_metrics(work), report.load_plan(work))
    assert [len(s["train_epoch"]) for s in series] == [1, 1]
    fig = figures.curves_plot(series, bounds, title="t")
    loss_ax, acc_ax = fig.axes[:2]
    # train + test per phase on the loss axes, test top-1 per phase on the accuracy axes
    assert _drawn_points(loss_ax)[:4] == [1, 1, 1, 1]
    assert _drawn_points(acc_ax)[:2] == [1, 1]
    assert [line.get_marker() for line in loss_ax.get_lines()[:4]] == ["o"] * 4
    top1 = np.concatenate([line.get_ydata() for line in acc_ax.get_lines()[:2]])
    np.testing.assert_allclose(top1, [30.0, 40.0])
    fig.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG_MAGIC


def test_accuracy_figure_draws_phases_and_ensembles(tmp_path):
    results = json.loads((_workdir(tmp_path / "run", finished=True) / "results.json")
                         .read_text())
    points = [dict(kind=k, top1=e["top1"], last_member=e["members"][-1])
              for k, e in results["ensembles"].items()]
    fig = figures.accuracy_plot(results["phases"], points)
    (ax,) = fig.axes
    drawn = _drawn_points(ax)
    assert drawn == [2, 2, 1, 1]            # best, last, two one-point ensembles
    assert all(line.get_marker() not in (None, "None", "") for line in ax.get_lines()[2:])


def test_many_classes_show_top_confusions_not_a_heatmap():
    rng = np.random.default_rng(0)
    matrix = rng.random((100, 100))
    matrix[3, 7] = 5.0                       # the top confusion
    names = tuple(f"class{i}" for i in range(100))
    fig = figures.second_class_plot({"gen0 (train)": matrix}, class_names=names)
    ax = fig.axes[0]
    assert not ax.images                     # no 100 x 100 heatmap
    bars = ax.patches
    assert len(bars) == 15
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "class3 -> class7"
    assert bars[0].get_width() == pytest.approx(5.0)
    assert figures.top_confusions(np.eye(3) + 0.5, 2)[0][2] == 0.5   # diagonal excluded
    small = figures.second_class_plot({"gen0": np.eye(10)}, class_names=names[:10])
    assert small.axes[0].images              # 10 classes: still the heatmap


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
