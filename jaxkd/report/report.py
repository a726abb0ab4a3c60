"""Markdown + PNG report of finished runs.

Command (one report per workdir; with several workdirs, e.g. seeds of one config, also an
aggregate with mean ± std written to `--out`, default the first workdir)::

    python -m jaxkd.report --workdir=/tmp/run_seed0 [--workdir=/tmp/run_seed1 ...] [--out=DIR]

The aggregate averages runs that differ only in their seed: workdirs whose config.json
differ in any other field (resume-safe fields such as progress_bar aside) are refused with
the differing fields named; `--allow_config_diff` averages them anyway, with a warning and
the differences listed in aggregate.md.

Each workdir receives `report.md`, `analysis.json` (every number the report computes from
the checkpoints) and the figures `accuracy.png`, `curves.png`, `second_class.png`. The
checkpoint statistics (secondary information, agreement, Dist^C / Dist^S, ensembles of every
prefix of generations) re-evaluate every phase's final checkpoint on the training and test
splits; `--noevaluate` keeps only what results.json and metrics.jsonl hold. `jaxkd.run.run`
calls `write_report([workdir])` at the end of a run. See docs/analysis.md.

References:
    [TT] Yang et al., 2018: Table 1, Figure 1, Figure 2, Eqn 4 / Table 2.
    [SD] Yang et al., 2019: Table 3 (error at the end of each mini-generation, best epoch,
        ensemble), Figure 3 (training curves with restarts).
    [BAN] Furlanello et al., 2018, Section 3.2 (BANE).
"""

from __future__ import annotations

import json
import logging
import pathlib
from typing import Sequence

import jax

from jaxkd import analysis, config as config_lib, plans, plateau
from jaxkd import workdir as workdir_lib
from jaxkd.engine import loop
from jaxkd.report import figures
from jaxkd.workspace import Workspace

log = logging.getLogger(__name__)

REPORT, ANALYSIS_JSON = "report.md", "analysis.json"
AGGREGATE, AGGREGATE_JSON = "aggregate.md", "aggregate.json"
ACCURACY_PNG, CURVES_PNG, SECOND_PNG = "accuracy.png", "curves.png", "second_class.png"
AGGREGATE_PNG = "aggregate_accuracy.png"


# -- reading a workdir -----------------------------------------------------------------
def read_metrics(workdir: pathlib.Path) -> list[dict]:
    """The records of `metrics.jsonl` (empty if absent)."""
    path = workdir_lib.metrics_path(workdir)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_config(workdir: pathlib.Path) -> dict:
    """The run's `config.json` as a dict."""
    return workdir_lib.read_json(workdir_lib.config_path(workdir))


def load_plan(workdir: pathlib.Path) -> list[plans.Phase]:
    """The run's plan, rebuilt from `config.json` (pure: no data, no compile)."""
    return plans.build(config_lib.from_saved(read_config(workdir)))


def phase_records(workdir: pathlib.Path, metrics: list[dict], plan) -> list[dict]:
    """Per-phase records: from results.json, else summarised from metrics.jsonl."""
    path = workdir_lib.results_path(workdir)
    if path.exists():
        return workdir_lib.read_json(path)["phases"]
    out = []
    for phase in plan:
        history = [m for m in metrics if m["phase"] == phase.name and m["kind"] == "eval"]
        heldout = [m["loss"] for m in metrics
                   if m["phase"] == phase.name and m["kind"] == "heldout"]
        if history:
            out.append(dict(name=phase.name, role=phase.role, model=phase.model,
                            **loop.history_summary(history, phase.num_epochs),
                            **plateau.summary(heldout)))
    return out


def curve_series(metrics: list[dict], plan) -> tuple[list[dict], list[dict]]:
    """Per-phase curves on the run's global epoch axis, and the phase boundaries."""
    series, boundaries, offset = [], [], 0
    for i, phase in enumerate(plan):
        recs = [m for m in metrics if m.get("phase") == phase.name]
        evals = [m for m in recs if m["kind"] == "eval"]
        trains = [m for m in recs if m["kind"] == "train"]
        spe = evals[0]["step"] / evals[0]["epoch"] if evals else 0
        if i:
            boundaries.append(dict(epoch=offset, restart=phase.init == "continue",
                                   name=phase.name))
        series.append(dict(
            name=phase.name,
            train_epoch=[offset + m["step"] / spe for m in trains] if spe else [],
            train_loss=[m["loss"] for m in trains] if spe else [],
            eval_epoch=[offset + m["epoch"] for m in evals],
            eval_loss=[m["loss"] for m in evals], eval_top1=[m["top1"] for m in evals]))
        offset += phase.num_epochs
    return series, boundaries


# -- markdown --------------------------------------------------------------------------
def md_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence], *,
               right: Sequence[bool] = ()) -> str:
    """A plain-text table whose columns are as wide as their widest cell (no overflow).

    `right[i]` right-aligns column i (numbers); columns are separated by two spaces.
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    align = list(right) + [False] * (len(header) - len(right))
    return "\n".join("  ".join(c.rjust(w) if a else c.ljust(w)
                               for c, w, a in zip(r, widths, align)).rstrip()
                     for r in cells)


def format_results(results: dict) -> str:
    """The end-of-run table: each phase's best and last test top-1 (and a language
    model's last validation and test perplexity, [BAN] Table 6's columns), then the
    ensembles.

    Columns adapt to the longest name (`snapshot_ensemble`, `sd_ensemble[cycle1..cycle4]`,
    long member lists), so no value runs into the next column.
    """
    def num(x):
        return "-" if x is None else f"{x:.4f}"
    # A language model (inputs are token windows): next-token top-1 and the perplexity.
    text = len(results.get("data", {}).get("image_shape", (0, 0, 0))) == 1
    def ppl(p, key):
        return f"{p[key]:.2f}" if key in p else "-"
    rows = [[p["name"], p.get("role", "-"), p.get("model", "-"), num(p.get("best_top1")),
             num(p.get("last_top1"))]
            + ([ppl(p, "last_heldout_perplexity"), ppl(p, "last_perplexity")] if text
               else []) for p in results.get("phases", [])]
    rows += [[name, "ensemble", "+".join(e.get("members", ())), num(e.get("top1")), "-"]
             + (["-", "-"] if text else []) for name, e in results.get("ensembles", {}).items()]
    header = ["phase", "role", "model / members", "best top-1", "last top-1"]
    return text_table(header + (["val perplexity", "last perplexity"] if text else []),
                      rows, right=[False, False, False, True, True, True, True])


def pct(x, digits: int = 2) -> str:
    """A fraction as a percentage string ('-' when missing)."""
    return "-" if x is None else f"{100 * x:.{digits}f}"


def _pm(stat: dict | None) -> str:
    return "-" if not stat else f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}"


def phase_section(records: list[dict], plan) -> str:
    """Per phase: how it was trained, best (epoch) and last test accuracy."""
    by_name = {p.name: p for p in plan}
    rows = []
    for r in records:
        p = by_name.get(r["name"])
        rows.append([r["name"], r["role"], r["model"], p.init if p else "-",
                     plans.describe_teacher(p.teacher) if p else "-", p.loss if p else "-",
                     r.get("epochs", "-"), f"{pct(r.get('best_top1'))} ({r.get('best_epoch')})",
                     pct(r.get("last_top1")), pct(r.get("best_top5")), pct(r.get("last_top5")),
                     f"{r.get('wall_time', 0):.0f}"])
    header = ["phase", "role", "model", "init", "teacher", "loss", "epochs",
              "best top-1 % (epoch)", "last top-1 %", "best top-5 %", "last top-5 %",
              "wall s"]
    return "## Phases (test accuracy)\n\n" + md_table(header, rows)


def ensemble_section(results: dict, summary: dict) -> str:
    """The run's ensembles (results.json) and every prefix of them (checkpoint analysis)."""
    whole = {(name, tuple(e["members"])) for name, e in results.get("ensembles", {}).items()}
    prefixes = {name: e for name, e in summary.get("ensembles", {}).items()
                if (name.split("[")[0], tuple(e["members"])) not in whole}
    rows = [[name, "+".join(e["members"]), e.get("scales") or "-", pct(e["top1"]),
             pct(e.get("top5"))]
            for name, e in {**results.get("ensembles", {}), **prefixes}.items()]
    if not rows:
        return ""
    return ("## Ensembles (test, mean of softmax; SD scales the k-th snapshot's logits by "
            "T^(k-1))\n\n" + md_table(["ensemble", "members", "logit scales", "top-1 %",
                                       "top-5 %"], rows))


def _err(x) -> str:
    return "-" if x is None else f"{100 * (1 - x):.2f}"


def sd_section(records: list[dict], results: dict) -> str:
    """[SD] Table 3 style: test error (%) at the end of each mini-generation, best, ensemble."""
    cycles = [r for r in records if r["role"] == "mini_generation"]
    if not cycles:
        return ""
    ens = results.get("ensembles", {})
    header = ["model"] + [f"end of {r['name']}" for r in cycles] + ["best", "SE ensemble",
                                                                      "SD ensemble"]
    row = ([cycles[0]["model"]] + [_err(r.get("last_top1")) for r in cycles] +
           [_err(max(r.get("best_top1", 0) for r in cycles)),
            _err(ens.get("snapshot_ensemble", {}).get("top1")),
            _err(ens.get("sd_ensemble", {}).get("top1"))])
    return "## Snapshot distillation (test error %)\n\n" + md_table(header, [row])


def perplexity_section(records: list[dict]) -> str:
    """[BAN] Table 6 style: each language-model phase's validation and test perplexity
    (last and best evaluation); empty for classifiers."""
    rows = [[r["name"], r.get("model", "-"), _ppl(r.get("last_heldout_perplexity")),
             _ppl(r.get("best_heldout_perplexity")), _ppl(r.get("last_perplexity")),
             _ppl(r.get("best_perplexity"))]
            for r in records if r.get("last_heldout_perplexity") is not None]
    if not rows:
        return ""
    return ("## Perplexity (validation = the held-out split, test; lower is better)\n\n"
            + md_table(["phase", "model", "last val", "best val", "last test", "best test"],
                       rows))


def _ppl(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def secondary_section(summary: dict) -> str:
    """[TT] Table 1: mean top-1..top-4 confidences (train), train / test accuracy, ECE."""
    stats = summary.get("phases", {})
    if not stats:
        return ""
    k = len(next(iter(stats.values())).get("train_confidences", [])) or 0
    rows = [[name] + [pct(c) for c in s.get("train_confidences", [])] +
            [pct(s.get("train_top1")), pct(s.get("test_top1")), pct(s.get("test_ece"))]
            for name, s in stats.items()]
    header = ["phase"] + [f"top-{i + 1} conf %" for i in range(k)] + [
        "train acc %", "test acc %", "test ECE %"]
    return ("## Secondary information (training set confidences, sorted per sample)\n\n" +
            md_table(header, rows))


def agreement_section(summary: dict) -> str:
    """Student vs its teacher on the test set."""
    rows = [[a["student"], a["teacher"], pct(a["top1_agreement"]),
             pct(a["second_class_agreement"]), f"{a['mean_kl']:.4f}"]
            for a in summary.get("agreement", [])]
    if not rows:
        return ""
    return ("## Student-teacher agreement (test)\n\n" +
            md_table(["student", "teacher", "top-1 agreement %", "2nd-class agreement %",
                      "mean KL(teacher ‖ student)"], rows))


def distance_section(summary: dict) -> str:
    """[TT] Table 2: Dist^C and Dist^S (radians) on the training and test features."""
    dist = summary.get("distances", {})
    names = list(dist.get("test", {}))
    if not names:
        return ""
    rows = [[n] + [f"{dist.get(s, {}).get(n, {}).get(k, float('nan')):.4f}"
                   for s in ("train", "test") for k in ("dist_c", "dist_s")] for n in names]
    return (f"## Dist^C / Dist^S (Eqn 4; superclasses: {summary['coarse_source']})\n\n" +
            md_table(["phase", "train Dist^C", "train Dist^S", "test Dist^C",
                      "test Dist^S"], rows))


# -- one workdir -----------------------------------------------------------------------
def _checkpoint_statistics(workdir: pathlib.Path) -> tuple[dict, dict, tuple]:
    """Checkpoint statistics, 2nd-class matrices (train split, else test), class names."""
    ws = Workspace.from_workdir(workdir)
    test = analysis.evaluate_workdir(workdir, "test", features=True, workspace=ws)
    train = None
    if not ws.splits.streaming:   # ImageNet: no pass over the training set
        train = analysis.evaluate_workdir(workdir, "train", features=True, workspace=ws)
    src = train or test
    matrices = {f"{n} ({src.split})": analysis.second_class_matrix(
        src.logits[n], src.labels, src.num_classes) for n in src.names}
    return analysis.summarize_evaluations(test, train), matrices, test.class_names


def _ensemble_points(results: dict, summary: dict) -> list[dict]:
    if summary.get("ensembles"):
        return [dict(kind=name.split("[")[0], top1=e["top1"], last_member=e["members"][-1])
                for name, e in summary["ensembles"].items()]
    return [dict(kind=name, top1=e["top1"], last_member=e["members"][-1])
            for name, e in results.get("ensembles", {}).items()]


def _figures(workdir, records, results, summary, matrices, class_names, metrics, plan):
    title = f"{workdir.name}: {results.get('method') or read_config(workdir).get('method')}"
    figures.accuracy_figure(records, _ensemble_points(results, summary),
                            workdir / ACCURACY_PNG, title=title)
    series, bounds = curve_series(metrics, plan)
    figures.curves_figure(series, bounds, workdir / CURVES_PNG, title=title)
    out = [ACCURACY_PNG, CURVES_PNG]
    if matrices:
        figures.second_class_figure(matrices, workdir / SECOND_PNG, class_names=class_names)
    if summary and (workdir / SECOND_PNG).exists():   # drawn now or by an evaluated report
        out.append(SECOND_PNG)
    return out


def _earlier_summary(workdir: pathlib.Path, records: list[dict]) -> dict:
    """analysis.json of an earlier evaluated report, if it covers exactly these phases."""
    path = workdir / ANALYSIS_JSON
    if not path.exists():
        return {}
    summary = json.loads(path.read_text())
    return summary if set(summary.get("phases", {})) == {r["name"] for r in records} else {}


def workdir_report(workdir: str | pathlib.Path, *, evaluate: bool = True) -> pathlib.Path:
    """Writes report.md, analysis.json and the PNGs of one run; returns report.md's path."""
    workdir = pathlib.Path(workdir).absolute()
    plan, metrics = load_plan(workdir), read_metrics(workdir)
    records = phase_records(workdir, metrics, plan)
    results_path = workdir_lib.results_path(workdir)
    results = workdir_lib.read_json(results_path) if results_path.exists() else {}
    summary, matrices, class_names, note = _earlier_summary(workdir, records), {}, (), ""
    if evaluate and jax.process_count() > 1:   # process 0 alone cannot drive a global mesh
        note = ("\n_Checkpoint statistics skipped in a multi-host run: run `python -m "
                "jaxkd.report --workdir=...` on one host._\n")
    elif evaluate:
        try:
            summary, matrices, class_names = _checkpoint_statistics(workdir)
        except Exception as err:  # the report still shows what results/metrics hold
            log.warning("checkpoint analysis of %s failed: %s", workdir, err)
            note = f"\n_Checkpoint analysis failed: {type(err).__name__}: {err}_\n"
    pngs = _figures(workdir, records, results, summary, matrices, class_names, metrics, plan)
    wall = results.get("run_wall_time")
    method = results.get("method") or read_config(workdir).get("method", "?")
    partial = "" if results else " (unfinished: from metrics.jsonl)"
    head = (f"# Report: {workdir.name}\n\nmethod `{method}`{partial}, "
            f"{len(plan)} phases, workdir `{workdir}`" +
            (f", run wall time {wall:.0f} s" if wall else "") + "\n" + note)
    sections = [head, phase_section(records, plan), ensemble_section(results, summary),
                sd_section(records, results), perplexity_section(records),
                secondary_section(summary),
                agreement_section(summary), distance_section(summary),
                "## Figures\n\n" + "\n\n".join(f"![{p[:-4]}]({p})" for p in pngs)]
    path = workdir / REPORT
    workdir_lib.write_text_atomic(path, "\n\n".join(s for s in sections if s) + "\n")
    if matrices:
        workdir_lib.write_json_atomic(workdir / ANALYSIS_JSON, summary)
    return path


# -- several workdirs ------------------------------------------------------------------
def _results_with_prefix_ensembles(workdir: pathlib.Path) -> dict:
    results = analysis.load_results(workdir)
    extra = workdir / ANALYSIS_JSON
    if extra.exists():
        ens = json.loads(extra.read_text()).get("ensembles", {})
        results = dict(results, ensembles={**ens, **results.get("ensembles", {})})
    return results


class ConfigsDifferError(ValueError):
    """Runs asked to be averaged differ in more than their seed."""


# Fields in which runs that are averaged may differ: the seed, and what changes nothing
# computed (jaxkd.run's resume-safe fields, e.g. progress_bar).
_COMPARE_FREE = ("config.seed",)


def config_differences(workdirs: Sequence[pathlib.Path]) -> dict[str, list[str]]:
    """For each workdir after the first, the `field: first -> this` lines of its config.json
    that differ from the first workdir's, other than the seed (empty: comparable runs)."""
    first = read_config(workdirs[0])
    out = {}
    for w in workdirs[1:]:
        diff = [line for line in config_lib.config_diff(first, read_config(w))
                if line.split(":", 1)[0] not in _COMPARE_FREE]
        if diff:
            out[str(w)] = diff
    return out


def check_comparable(workdirs: Sequence[pathlib.Path], *,
                     allow_config_diff: bool = False) -> dict[str, list[str]]:
    """Refuses (ConfigsDifferError) to average runs whose configs differ in more than the
    seed; with `allow_config_diff` logs a warning instead. Returns the differences."""
    diffs = config_differences(workdirs)
    if not diffs:
        return diffs
    lines = "\n".join(f"  {w} (vs {workdirs[0]}):\n    " + "\n    ".join(d)
                      for w, d in diffs.items())
    if not allow_config_diff:
        raise ConfigsDifferError(
            f"refusing to average runs whose configs differ in more than the seed:\n{lines}\n"
            f"Average runs of one config (seeds), or pass --allow_config_diff "
            f"(allow_config_diff=True) to average them anyway.")
    log.warning("averaging runs whose configs differ in more than the seed:\n%s", lines)
    return diffs


def aggregate_report(workdirs: Sequence[pathlib.Path], out: pathlib.Path, *,
                     allow_config_diff: bool = False) -> pathlib.Path:
    """Mean ± std over runs (e.g. seeds) of phase and ensemble accuracies: aggregate.md.

    Raises:
        ConfigsDifferError: the configs differ in more than the seed (unless
            `allow_config_diff`, which lists the differences in aggregate.md instead).
    """
    workdirs = [pathlib.Path(w) for w in workdirs]
    diffs = check_comparable(workdirs, allow_config_diff=allow_config_diff)
    out.mkdir(parents=True, exist_ok=True)
    agg = analysis.aggregate_results([_results_with_prefix_ensembles(w) for w in workdirs])
    rows = [[n, s.get("best_top1", {}).get("n", 0), _pm(s.get("best_top1")),
             _pm(s.get("last_top1")), _pm(s.get("best_top5")), _pm(s.get("last_top5"))]
            for n, s in agg["phases"].items()]
    ens = [[n, s.get("top1", {}).get("n", 0), _pm(s.get("top1")), _pm(s.get("top5"))]
           for n, s in agg["ensembles"].items()]
    figures.aggregate_figure([dict(name=n, **s) for n, s in agg["phases"].items()],
                             out / AGGREGATE_PNG, title=f"{len(workdirs)} runs")
    text = [f"# Aggregate over {len(workdirs)} runs\n\n" +
            "\n".join(f"- `{w}`" for w in workdirs) +
            ("".join(f"\n\n**Warning: config of `{w}` differs from the first in more than "
                     f"the seed:** " + "; ".join(f"`{x}`" for x in d)
                     for w, d in diffs.items())),
            "## Phases (test top-1 / top-5 %, mean ± sample std)\n\n" +
            md_table(["phase", "runs", "best top-1", "last top-1", "best top-5",
                      "last top-5"], rows)]
    if ens:
        text.append("## Ensembles (test %, mean ± sample std)\n\n" +
                    md_table(["ensemble", "runs", "top-1", "top-5"], ens))
    text.append(f"## Figure\n\n![aggregate]({AGGREGATE_PNG})")
    path = out / AGGREGATE
    workdir_lib.write_text_atomic(path, "\n\n".join(text) + "\n")
    workdir_lib.write_json_atomic(out / AGGREGATE_JSON, agg)
    return path


def write_report(workdirs: Sequence[str | pathlib.Path], out: str | pathlib.Path | None = None,
                 *, evaluate: bool = True,
                 allow_config_diff: bool = False) -> list[pathlib.Path]:
    """Reports every workdir and, for more than one, their aggregate (in `out` or the first).

    Args:
        workdirs: finished (or partly finished) run directories.
        out: where the aggregate goes; default the first workdir.
        evaluate: re-evaluate the final checkpoints for the secondary-information tables.
        allow_config_diff: average runs whose configs differ in more than the seed (a
            warning) instead of refusing (ConfigsDifferError, before anything is written).

    Returns:
        The markdown files written (each report.md, then aggregate.md if any).
    """
    workdirs = [pathlib.Path(w).absolute() for w in workdirs]
    if len(workdirs) > 1:   # refuse before minutes of checkpoint evaluation
        check_comparable(workdirs, allow_config_diff=allow_config_diff)
    paths = [workdir_report(w, evaluate=evaluate) for w in workdirs]
    if len(workdirs) > 1:
        paths.append(aggregate_report(workdirs, pathlib.Path(out or workdirs[0]).absolute(),
                                      allow_config_diff=allow_config_diff))
    return paths
