"""The report's PNG figures (matplotlib's object API with the Agg canvas, no pyplot state).

Each `*_figure` function takes plain data (lists of dicts, numpy arrays), draws one figure
with its `*_plot` twin (which returns the unsaved `Figure`, for tests and notebooks) and saves
it to `path`; `jaxkd.report` decides what goes in. A series of one point is drawn as a marker
(a line needs two points), so a run of one epoch per phase still shows its curves. Using `matplotlib.figure.Figure` directly
leaves a notebook's pyplot backend alone and needs no display.

References:
    [TT] Yang et al., 2018: Figure 1 (2nd-class matrices), Figure 2 (accuracy against the
        generation, with ensembles of generations 1..m).
    [SD] Yang et al., 2019: Figure 3 (training curves with the learning-rate restarts of
        the mini-generations).
"""

from __future__ import annotations

import math
import pathlib
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_DPI = 110


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: pathlib.Path) -> pathlib.Path:
    fig.savefig(path)
    return path


def _style(fmt: str, n: int) -> str:
    """`fmt` with a marker when the series has a single point (else nothing is drawn)."""
    if n == 1 and not any(m in fmt for m in "o^vsD*P.x+"):
        return "o" + fmt
    return fmt


def _ms(n: int, default: float) -> float:
    return max(default, 6.0) if n == 1 else default


def top_confusions(matrix: np.ndarray, k: int = 15) -> list[tuple[int, int, float]]:
    """The `k` largest off-diagonal entries (true class, 2nd class, value), largest first."""
    m = np.array(matrix, dtype=np.float64)
    np.fill_diagonal(m, -np.inf)
    flat = np.argsort(-m, axis=None, kind="stable")[:k]
    rows, cols = np.unravel_index(flat, m.shape)
    return [(int(r), int(c), float(m[r, c])) for r, c in zip(rows, cols)
            if np.isfinite(m[r, c]) and m[r, c] > 0]


def accuracy_figure(phases: Sequence[Mapping], ensembles: Sequence[Mapping],
                    path: pathlib.Path, *, title: str = "") -> pathlib.Path:
    """Saves `accuracy_plot(phases, ensembles, title=title)` to `path`."""
    return _save(accuracy_plot(phases, ensembles, title=title), path)


def accuracy_plot(phases: Sequence[Mapping], ensembles: Sequence[Mapping], *,
                  title: str = "") -> Figure:
    """Best and last test top-1 (%) per phase, ensembles at the index of their last member.

    Args:
        phases: records with 'name', 'best_top1', 'last_top1' (fractions), in plan order.
        ensembles: records with 'name', 'top1' and 'last_member' (a phase name).
        path: PNG to write.
        title: figure title.

    References:
        [TT] Figure 2 (accuracy of each generation and of the ensembles of 1..m).
    """
    fig = _new_figure(max(4.5, 0.9 * len(phases) + 2.5), 3.6)
    ax = fig.add_subplot()
    x = np.arange(len(phases))
    for key, style in (("best_top1", "o-"), ("last_top1", "s--")):
        y = [100 * p[key] if key in p else np.nan for p in phases]
        ax.plot(x, y, style, label=key.replace("_top1", " top-1"))
    index = {p["name"]: i for i, p in enumerate(phases)}
    for kind, marker in zip(sorted({e["kind"] for e in ensembles}), "^vD*P"):
        rows = [e for e in ensembles if e["kind"] == kind and e["last_member"] in index]
        ax.plot([index[e["last_member"]] for e in rows], [100 * e["top1"] for e in rows],
                marker + ":", ms=_ms(len(rows), 6.0), label=f"{kind} (members up to x)")
    ax.set_xticks(x, [p["name"] for p in phases])
    ax.set_xlabel("phase (generation / mini-generation)")
    ax.set_ylabel("test top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "accuracy per phase", fontsize=10)
    return fig


def aggregate_figure(rows: Sequence[Mapping], path: pathlib.Path, *,
                     title: str = "") -> pathlib.Path:
    """Saves `aggregate_plot(rows, title=title)` to `path`."""
    return _save(aggregate_plot(rows, title=title), path)


def aggregate_plot(rows: Sequence[Mapping], *, title: str = "") -> Figure:
    """Mean ± std (error bars) of best and last top-1 (%) per phase over several runs.

    Args:
        rows: {'name', 'best_top1': mean_std, 'last_top1': mean_std} per phase, in order.
    """
    fig = _new_figure(max(4.5, 0.9 * len(rows) + 2.5), 3.6)
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    for offset, key in ((-0.08, "best_top1"), (0.08, "last_top1")):
        mean = [100 * r[key]["mean"] if key in r else np.nan for r in rows]
        std = [100 * r[key]["std"] if key in r else 0.0 for r in rows]
        ax.errorbar(x + offset, mean, yerr=std, fmt="o-", capsize=3,
                    label=key.replace("_top1", " top-1"))
    ax.set_xticks(x, [r["name"] for r in rows])
    ax.set_ylabel("test top-1 (%), mean ± std")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "accuracy over runs", fontsize=10)
    return fig


def curves_figure(series: Sequence[Mapping], boundaries: Sequence[Mapping],
                  path: pathlib.Path, *, title: str = "") -> pathlib.Path:
    """Saves `curves_plot(series, boundaries, title=title)` to `path`."""
    return _save(curves_plot(series, boundaries, title=title), path)


def curves_plot(series: Sequence[Mapping], boundaries: Sequence[Mapping], *,
                title: str = "") -> Figure:
    """Training loss, test loss and test top-1 against the global epoch, one colour per phase.

    Args:
        series: per phase {'name', 'train_epoch', 'train_loss', 'eval_epoch', 'eval_loss',
            'eval_top1'} (lists; epochs counted from the start of the whole run).
        boundaries: {'epoch', 'restart': bool, 'name'} where a phase starts (after the
            first): a dashed line for a learning-rate restart of a continued phase (SD
            mini-generation), a solid line for a new generation (fresh init).
        path: PNG to write.

    References:
        [SD] Figure 3 and Eqn 5 (cyclic cosine restarts at the mini-generation boundaries).
    """
    fig = _new_figure(10, 3.8)
    loss_ax, acc_ax = fig.subplots(1, 2)
    colors = [f"C{i % 10}" for i in range(len(series))]
    for s, color in zip(series, colors):
        n_train, n_eval = len(s["train_epoch"]), len(s["eval_epoch"])
        loss_ax.plot(s["train_epoch"], s["train_loss"], _style("-", n_train), color=color,
                     alpha=0.8, ms=_ms(n_train, 3.0), label=f"{s['name']} train")
        loss_ax.plot(s["eval_epoch"], s["eval_loss"], "o--", color=color,
                     ms=_ms(n_eval, 3.0), label=f"{s['name']} test")
        acc_ax.plot(s["eval_epoch"], [100 * v for v in s["eval_top1"]], "o-", color=color,
                    ms=_ms(n_eval, 3.0), label=s["name"])
    for ax in (loss_ax, acc_ax):
        for b in boundaries:
            ax.axvline(b["epoch"], color="0.3", lw=0.9, ls="--" if b["restart"] else "-")
        ax.set_xlabel("epoch (whole run)")
        ax.grid(alpha=0.3)
    loss_ax.set_ylabel("loss")
    acc_ax.set_ylabel("test top-1 (%)")
    loss_ax.legend(fontsize=7, ncol=2)
    acc_ax.legend(fontsize=7)
    note = ("train: the phase's objective (with its teacher term); test: cross-entropy. "
            "Dashed: LR restart (continued phase); solid: new generation")
    fig.suptitle((title + "\n" if title else "") + note, fontsize=9)
    return fig


# Above this many classes a heatmap's labels are unreadable: the top confusions instead.
MAX_HEATMAP_CLASSES = 20


def second_class_figure(matrices: Mapping[str, np.ndarray], path: pathlib.Path, *,
                        class_names: Sequence[str] = (), title: str = "") -> pathlib.Path:
    """Saves `second_class_plot(matrices, class_names=..., title=...)` to `path`."""
    return _save(second_class_plot(matrices, class_names=class_names, title=title), path)


def second_class_plot(matrices: Mapping[str, np.ndarray], *, class_names: Sequence[str] = (),
                      title: str = "") -> Figure:
    """Small multiples of the row-normalised (true class, 2nd class) matrices, one per phase.

    With more than `MAX_HEATMAP_CLASSES` classes (CIFAR-100) a 100 x 100 heatmap has no
    usable labels: each phase gets a horizontal bar chart of its `top_confusions` instead,
    labelled 'true -> 2nd class'.

    References:
        [TT] Figure 1 (rows: ground truth; columns: class of the second-highest score).
    """
    if matrices and max(m.shape[0] for m in matrices.values()) > MAX_HEATMAP_CLASSES:
        return _top_confusions_plot(matrices, class_names=class_names, title=title)
    n = len(matrices)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = _new_figure(3.3 * cols + 0.8, 3.2 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    vmax = max(float(m.max()) for m in matrices.values()) or 1.0
    image = None
    for i, (ax, (name, matrix)) in enumerate(zip(axes, matrices.items())):
        image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=vmax)
        ax.set_title(name, fontsize=9)
        c, first_column = matrix.shape[0], i % cols == 0
        if class_names and c <= 20:
            ax.set_xticks(range(c), class_names, rotation=90, fontsize=6)
            ax.set_yticks(range(c), class_names if first_column else [], fontsize=6)
        ax.set_xlabel("2nd-highest class", fontsize=8)
        if first_column:
            ax.set_ylabel("true class", fontsize=8)
    for ax in axes[n:]:
        ax.set_axis_off()
    if image is not None:
        fig.colorbar(image, ax=list(axes[:n]), shrink=0.8, label="frequency in row")
    fig.suptitle(title or "true class vs class of the 2nd-highest score", fontsize=10)
    return fig


def _top_confusions_plot(matrices: Mapping[str, np.ndarray], *, class_names: Sequence[str],
                         title: str, k: int = 15) -> Figure:
    """One bar chart per phase: the `k` most frequent (true class, 2nd class) pairs."""
    n = len(matrices)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _new_figure(4.2 * cols + 0.6, 0.22 * k * rows + 1.2 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()

    def name(c: int) -> str:
        return class_names[c] if c < len(class_names) else str(c)

    for ax, (phase, matrix) in zip(axes, matrices.items()):
        top = top_confusions(matrix, k)
        labels = [f"{name(r)} -> {name(c)}" for r, c, _ in top]
        ax.barh(range(len(top)), [v for _, _, v in top], color="C0")
        ax.set_yticks(range(len(top)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(phase, fontsize=9)
        ax.set_xlabel("frequency in the true class's row", fontsize=8)
        ax.grid(alpha=0.3, axis="x")
    for ax in axes[n:]:
        ax.set_axis_off()
    fig.suptitle(title or f"top {k} (true class -> class of the 2nd-highest score) pairs",
                 fontsize=10)
    return fig
