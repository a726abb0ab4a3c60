"""jaxkd.report.figures, browser-free: the figures are rendered with matplotlib's Agg
canvas and their axes inspected before saving; the `*_figure` twins write PNG files that
decode to drawn (not blank) images. No training: hand-written workdirs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from jaxkd import report
from jaxkd.report import figures
from tests.report.helpers import PNG_MAGIC, _workdir


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


def _colours(path) -> int:
    """Distinct colours of a saved PNG: a blank canvas has one, a drawn figure many."""
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
    return len(np.unique(pixels, axis=0))


def _series():
    return [dict(name="gen0", train_epoch=[0.5, 1.0, 1.5, 2.0], train_loss=[2.0, 1.5, 1.2, 1.0],
                 eval_epoch=[1, 2], eval_loss=[1.6, 1.1], eval_top1=[0.4, 0.5]),
            dict(name="gen1", train_epoch=[2.5, 3.0, 3.5, 4.0], train_loss=[0.9, 0.8, 0.7, 0.6],
                 eval_epoch=[3, 4], eval_loss=[1.0, 0.9], eval_top1=[0.55, 0.6])]


def test_curves_figure_draws_series_and_phase_boundaries(tmp_path):
    bounds = [dict(epoch=2, restart=False, name="gen1")]
    fig = figures.curves_plot(_series(), bounds, title="ban")
    loss_ax, acc_ax = fig.axes[:2]
    lines = loss_ax.get_lines()
    assert len(lines) == 5                      # train + test per phase, one boundary
    np.testing.assert_allclose(lines[0].get_ydata(), [2.0, 1.5, 1.2, 1.0])
    np.testing.assert_allclose(acc_ax.get_lines()[1].get_ydata(), [55.0, 60.0])
    boundary = lines[-1]
    assert list(boundary.get_xdata()) == [2, 2] and boundary.get_linestyle() == "-"
    restart = figures.curves_plot(_series(), [dict(epoch=2, restart=True, name="cycle2")])
    assert restart.axes[0].get_lines()[-1].get_linestyle() == "--"
    path = figures.curves_figure(_series(), bounds, tmp_path / "curves.png", title="ban")
    assert path == tmp_path / "curves.png" and path.read_bytes()[:8] == PNG_MAGIC
    assert _colours(path) > 10


def test_aggregate_figure_draws_mean_with_std_bars(tmp_path):
    rows = [dict(name="gen0", best_top1=dict(mean=0.5, std=0.02, n=2),
                 last_top1=dict(mean=0.48, std=0.01, n=2)),
            dict(name="gen1", best_top1=dict(mean=0.6, std=0.03, n=2))]
    fig = figures.aggregate_plot(rows, title="seeds")
    (ax,) = fig.axes
    best, last = ax.containers                  # one errorbar per key
    np.testing.assert_allclose(best.lines[0].get_xdata(), [-0.08, 0.92])
    np.testing.assert_allclose(np.asarray(best.lines[0].get_ydata(), float), [50.0, 60.0])
    last_y = np.asarray(last.lines[0].get_ydata(), float)
    np.testing.assert_allclose(last.lines[0].get_xdata(), [0.08, 1.08])
    assert last_y[0] == pytest.approx(48.0) and np.isnan(last_y[1])   # gen1: no last_top1
    assert [t.get_text() for t in ax.get_xticklabels()] == ["gen0", "gen1"]
    path = figures.aggregate_figure(rows, tmp_path / "agg.png")
    assert path.read_bytes()[:8] == PNG_MAGIC and _colours(path) > 10


def test_accuracy_figure_file_is_drawn(tmp_path):
    results = json.loads((_workdir(tmp_path / "run", finished=True) / "results.json")
                         .read_text())
    path = figures.accuracy_figure(results["phases"], [], tmp_path / "accuracy.png")
    assert path.read_bytes()[:8] == PNG_MAGIC and _colours(path) > 10
    (ax,) = figures.accuracy_plot(results["phases"], []).axes
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [30.0, 40.0])   # best top-1


def test_top_confusions_largest_off_diagonal_first():
    m = np.array([[9.0, 0.2, 0.0], [0.5, 9.0, 0.1], [0.0, 0.5, 9.0]])
    assert figures.top_confusions(m, 3) == [(1, 0, 0.5), (2, 1, 0.5), (0, 1, 0.2)]
    assert figures.top_confusions(m, 10)[-1] == (1, 2, 0.1)       # zeros are left out
    assert len(figures.top_confusions(m, 10)) == 4


def test_second_class_figure_is_one_heatmap_per_phase(tmp_path):
    matrices = {f"gen{i}": np.eye(4)[::-1] * (i + 1) for i in range(5)}
    fig = figures.second_class_plot(matrices, class_names=("a", "b", "c", "d"))
    images = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in images] == list(matrices)
    np.testing.assert_array_equal(images[2].images[0].get_array(), matrices["gen2"])
    assert [t.get_text() for t in images[0].get_xticklabels()] == ["a", "b", "c", "d"]
    path = figures.second_class_figure(matrices, tmp_path / "second.png")
    assert path.read_bytes()[:8] == PNG_MAGIC and _colours(path) > 10
