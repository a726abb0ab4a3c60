"""Analysis of trained phases: logits of a split, ensembles, secondary information.

Pure functions over logits, features and labels (numpy or jax arrays) live in
`jaxkd.secondary` and are re-exported here; this module adds the ensembles of any subset of
phases, multi-seed aggregation of `results.json` files, and `evaluate_workdir`, which
rebuilds a run from its `config.json` and returns every finished phase's logits (and
penultimate features) on a split, read from the phases' final checkpoints.

References:
    [BAN] Furlanello et al., 2018, Section 3.2 (BANE: mean of the generations' softmax).
    [SD] Yang et al., 2019, Section 4.1 (snapshot ensembles; SD ensemble with the k-th
        snapshot's logits scaled by T^(k-1)).
    [TT] Yang et al., 2018, Table 1, Figure 1, Eqn 4 and Table 2 (see `jaxkd.secondary`);
        Section 4 (ensembles of generations 1..m).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import time
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxkd import losses, plans
from jaxkd.engine import state as state_lib

log = logging.getLogger(__name__)
from jaxkd.engine import step as step_lib
from jaxkd.secondary import (ECE_BINS, accuracy, angle, class_means,  # noqa: F401
                             expected_calibration_error, mean_kl, second_class,
                             second_class_agreement, second_class_matrix,
                             second_class_pair_matrix, semantic_distances, softmax,
                             superclass_of, top1_agreement, topk_confidences)

# CIFAR-10 has no superclasses; this two-group split (vehicles / animals) stands in for them
# when Dist^C / Dist^S are asked of a CIFAR-10 run. It is not the paper's setting.
CIFAR10_GROUPS = {"airplane": 0, "automobile": 0, "ship": 0, "truck": 0, "bird": 1, "cat": 1,
                  "deer": 1, "dog": 1, "frog": 1, "horse": 1}


def predict_split(model, variables, pipeline, mesh, split: str = "test", *,
                  features: bool = False, dtype=jnp.float32, predict=None):
    """Logits (and features) of every example of a split, padding removed, as numpy.

    `predict` (from `jaxkd.engine.step.make_predict_step`, built with the same `features`)
    can be passed to reuse one compiled program across checkpoints of an architecture.
    """
    if predict is None:
        predict = step_lib.make_predict_step(model, mesh=mesh, features=features,
                                             dtype=dtype)
    logits, feats = [], []
    for batch in pipeline.eval_batches(split):
        lg, ft = jax.device_get(predict(variables, batch))
        mask = np.asarray(jax.device_get(batch["mask"]), bool)
        logits.append(lg[mask])
        if features:
            feats.append(ft[mask])
    logits = np.concatenate(logits)
    return (logits, np.concatenate(feats)) if features else logits


def split_logits(runner, phase, state, split: str, *,
                 programs: dict | None = None) -> np.ndarray:
    """Logits of a student state of `phase` on a split.

    `programs` (a dict) shares one compiled predict program per architecture between calls.
    """
    model = runner.phase_model(phase)
    predict = None
    if programs is not None:
        key = (phase.model, phase.model_overrides, False)
        if key not in programs:
            programs[key] = step_lib.make_predict_step(model, mesh=runner.mesh)
        predict = programs[key]
    return predict_split(model, state_lib.variables_of(state), runner.pipeline, runner.mesh,
                         split, predict=predict)


def split_logits_of_ref(runner, ref, split: str) -> np.ndarray:
    """Logits of a teacher reference (phase, anchor or checkpoint) on a split."""
    teacher = runner.teacher_of_ref(ref)
    return predict_split(teacher.model, teacher.variables, runner.pipeline, runner.mesh, split)


def split_labels(pipeline, split: str = "test") -> np.ndarray:
    """Labels of a split in evaluation order, padding removed."""
    out = []
    for batch in pipeline.eval_batches(split):
        mask = np.asarray(jax.device_get(batch["mask"]), bool)
        out.append(np.asarray(jax.device_get(batch["label"]))[mask])
    return np.concatenate(out)


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Fraction of examples whose label is among the k highest logits."""
    top = np.argsort(-logits, axis=-1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=-1)))


def ensemble_accuracy(member_logits: Sequence[np.ndarray], labels: np.ndarray,
                      scales: Sequence[float] | None = None) -> dict:
    """Top-1/top-5 of the mean-softmax ensemble (`jaxkd.losses.ensemble_logits`)."""
    logits = np.asarray(losses.ensemble_logits([jnp.asarray(m) for m in member_logits],
                                               scales=scales))
    return {"top1": topk_accuracy(logits, labels, 1), "top5": topk_accuracy(logits, labels, 5)}


def _ensemble_specs(plan) -> list[tuple[str, list[int], list[float] | None]]:
    """Which ensembles a plan's phases call for: (name, member indices, logit scales)."""
    specs = []
    gens = [i for i, p in enumerate(plan) if p.role == "generation"]
    if len(gens) >= 2:
        specs.append(("bane", gens, None))             # [BAN] generations 1..M
    patriarch = [i for i, p in enumerate(plan) if p.role == "patriarch"]
    if patriarch and gens:                           # [TT] Table 4: "all generations",
        specs.append(("tt_ensemble", patriarch + gens, None))   # the patriarch (Gen #0) too
    cycles = [i for i, p in enumerate(plan) if p.role == "mini_generation"]
    if len(cycles) >= 2:
        specs.append(("snapshot_ensemble", cycles, None))
        temps = [dict(plan[i].loss_params).get("temperature") for i in cycles]
        t = next((x for x in temps if x), None)
        if t:                                        # [SD] k-th snapshot scaled by T^(k-1)
            specs.append(("sd_ensemble", cycles, [t ** k for k in range(len(cycles))]))
    return specs


def plan_ensembles(runner) -> dict:
    """Evaluates the ensembles of the finished plan on the test split."""
    specs = _ensemble_specs(runner.plan)
    if not specs:
        return {}
    t0 = time.perf_counter()
    labels = split_labels(runner.pipeline, "test")
    needed = sorted({i for _, members, _ in specs for i in members})
    log.info("ensembles %s: test logits of %d phases (%s)",
             ", ".join(name for name, _, _ in specs), len(needed),
             ", ".join(runner.plan[i].name for i in needed))
    programs, logits = {}, {}
    for n, i in enumerate(needed, start=1):
        t = time.perf_counter()
        logits[i] = split_logits(runner, runner.plan[i], runner.final_state(i), "test",
                                 programs=programs)
        log.info("ensembles: phase %s (%d/%d) predicted in %.1f s", runner.plan[i].name, n,
                 len(needed), time.perf_counter() - t)
    out = {}
    for name, members, scales in specs:
        out[name] = dict(ensemble_accuracy([logits[i] for i in members], labels, scales),
                         members=[runner.plan[i].name for i in members], scales=scales)
        log.info("ensemble %s (%s): test top-1 %.4f top-5 %.4f", name,
                 "+".join(out[name]["members"]), out[name]["top1"], out[name]["top5"])
    log.info("ensembles evaluated in %.1f s", time.perf_counter() - t0)
    return out


# -- ensembles of any subset of phases --------------------------------------------------
def sd_ensemble_scales(temperature: float, count: int) -> list[float]:
    """Logit scales of an SD ensemble of `count` snapshots: T^0, T^1, ..., T^(count-1).

    References:
        [SD] Section 4.1: the k-th snapshot's logits are multiplied by T^(k-1) before the
        softmax outputs are averaged.
    """
    return [float(temperature) ** k for k in range(count)]


def ensemble_specs(plan) -> list[dict]:
    """The ensembles a plan calls for: [{'name', 'members' (phase names), 'scales'}]."""
    return [dict(name=name, members=[plan[i].name for i in members], scales=scales)
            for name, members, scales in _ensemble_specs(plan)]


def ensemble_of(logits: Mapping[str, np.ndarray], labels: np.ndarray,
                members: Sequence[str], scales: Sequence[float] | None = None) -> dict:
    """Top-1/top-5 of the mean-softmax ensemble of any subset of phases (by name).

    References:
        [BAN] Section 3.2 (BANE); [SD] Section 4.1 (scaled SD ensemble).
    """
    return ensemble_accuracy([logits[m] for m in members], labels, scales)


def cumulative_ensembles(logits: Mapping[str, np.ndarray], labels: np.ndarray,
                         members: Sequence[str],
                         scales: Sequence[float] | None = None) -> list[dict]:
    """Ensembles of the first 2, 3, ..., n members: generations 1..m or snapshots 1..k.

    Returns:
        One dict per prefix: {'members', 'scales', 'top1', 'top5'}.

    References:
        [TT] Section 4 (ensembles of generations 1..m); [SD] Section 4.1.
    """
    out = []
    for n in range(2, len(members) + 1):
        sub = None if scales is None else list(scales[:n])
        out.append(dict(ensemble_of(logits, labels, members[:n], sub),
                        members=list(members[:n]), scales=sub))
    return out


# -- evaluating a workdir's checkpoints ------------------------------------------------
@dataclasses.dataclass
class Evaluation:
    """Outputs of every finished phase of a run on one split (numpy, evaluation order).

    Attributes:
        split: 'train', 'test' or 'heldout'.
        phases: the plan's phases that have a final checkpoint, in plan order.
        logits: phase name -> float32[N, C].
        features: phase name -> float32[N, D] penultimate features, or None.
        labels: int32[N].
        coarse_labels: int[N] superclasses, or None (see `coarse_source`).
        coarse_source: where the superclasses come from ('' when there are none).
        class_names: one name per class.
    """

    split: str
    phases: list
    logits: dict
    features: dict | None
    labels: np.ndarray
    coarse_labels: np.ndarray | None
    coarse_source: str
    class_names: tuple

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.phases]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_runner(workdir: str | pathlib.Path):
    """`jaxkd.run.Runner` rebuilt from `workdir/config.json` (data, mesh, models, plan)."""
    from jaxkd import run as run_lib  # run imports this module
    return run_lib.Runner.from_workdir(workdir)


def has_final(phase_dir: pathlib.Path) -> bool:
    """Whether a phase directory holds a committed final checkpoint."""
    final = pathlib.Path(phase_dir) / "final"
    return final.is_dir() and any(p.name.isdigit() for p in final.iterdir())


def _coarse_labels(splits, split: str, labels: np.ndarray):
    coarse = getattr(splits.split(split), "coarse_labels", None)
    if coarse is not None:
        return np.asarray(coarse), "superclasses of the data set"
    names = tuple(splits.class_names)
    if set(names) == set(CIFAR10_GROUPS):
        return (np.array([CIFAR10_GROUPS[names[i]] for i in labels]),
                "CIFAR-10 vehicles / animals (stand-in: the data has no superclasses)")
    return None, ""


def evaluate_workdir(workdir: str | pathlib.Path, split: str = "test",
                     features: bool = False, *, runner=None,
                     programs: dict | None = None) -> Evaluation:
    """Logits (and features) of every finished phase of a run, from its final checkpoints.

    Args:
        workdir: a run's workdir (needs `config.json` and `phases/<name>/final`).
        split: 'train', 'test' or 'heldout' (evaluation transform, no augmentation).
        features: also return the penultimate features (for Dist^C / Dist^S).
        runner: a `load_runner(workdir)` to reuse (the data is then loaded once).
        programs: a dict (initially empty) shared between calls with the same runner, so
            each architecture's predict program is compiled once.

    Returns:
        An `Evaluation`; phases without a final checkpoint are left out.
    """
    runner = runner if runner is not None else load_runner(workdir)
    dtype = jnp.bfloat16 if runner.config.dtype == "bfloat16" else jnp.float32
    labels = split_labels(runner.pipeline, split)
    programs = {} if programs is None else programs
    done, logits, feats = [], {}, {}
    for phase in runner.plan:
        phase_dir = runner.workdir / "phases" / phase.name
        if not has_final(phase_dir):
            continue
        net = runner.teacher_of_ref(plans.TeacherRef(
            checkpoint=str(phase_dir), model=phase.model,
            model_overrides=phase.model_overrides))
        key = (phase.model, phase.model_overrides, features)
        if key not in programs:
            programs[key] = step_lib.make_predict_step(net.model, mesh=runner.mesh,
                                                       features=features, dtype=dtype)
        out = predict_split(net.model, net.variables, runner.pipeline, runner.mesh, split,
                            features=features, predict=programs[key])
        logits[phase.name], feats[phase.name] = out if features else (out, None)
        done.append(phase)
    coarse, source = _coarse_labels(runner.splits, split, labels)
    return Evaluation(split, done, logits, feats if features else None, labels, coarse,
                      source, tuple(runner.splits.class_names))


# -- statistics of a workdir -----------------------------------------------------------
def phase_statistics(test: Evaluation, train: Evaluation | None = None) -> dict:
    """Per phase: accuracy, top-1..top-4 mean confidences and ECE on each split given.

    References:
        [TT] Table 1 (confidences on the training set, train and test accuracy);
        [ECE] Eqn 3.
    """
    k = min(4, test.num_classes)
    out = {}
    for ev in (e for e in (train, test) if e is not None):
        for name, lg in ev.logits.items():
            out.setdefault(name, {}).update({
                f"{ev.split}_top1": accuracy(lg, ev.labels),
                f"{ev.split}_confidences": topk_confidences(lg, k).tolist(),
                f"{ev.split}_ece": expected_calibration_error(lg, ev.labels)})
    return out


def semantic_distance_table(ev: Evaluation) -> dict:
    """Phase name -> {'dist_c', 'dist_s'} (empty without features or superclasses).

    References:
        [TT] Eqn 4 and Table 2.
    """
    if ev.features is None or ev.coarse_labels is None:
        return {}
    return {name: semantic_distances(f, ev.labels, ev.coarse_labels)
            for name, f in ev.features.items()}


def _teacher_logits(ev: Evaluation, ref) -> np.ndarray | None:
    if ref is None or ref.checkpoint or ref.anchor or ref.select or not ref.phases:
        return None
    if not all(p in ev.logits for p in ref.phases):
        return None
    return np.asarray(losses.ensemble_logits([jnp.asarray(ev.logits[p]) for p in ref.phases]))


def teacher_agreement(ev: Evaluation) -> list[dict]:
    """For each phase taught by earlier phases: top-1 and 2nd-class agreement, mean KL.

    References:
        [TT] Figure 1 (secondary information passed on); [KD] Eqn 2 (KL at T = 1).
    """
    rows = []
    for phase in ev.phases:
        t = _teacher_logits(ev, phase.teacher)
        if t is None:
            continue
        s = ev.logits[phase.name]
        rows.append(dict(student=phase.name, teacher="+".join(phase.teacher.phases),
                         top1_agreement=top1_agreement(s, t),
                         second_class_agreement=second_class_agreement(s, t),
                         mean_kl=mean_kl(t, s)))
    return rows


def workdir_ensembles(ev: Evaluation) -> dict:
    """The plan's ensembles over every prefix of their members, e.g. 'bane[gen1..gen3]'."""
    out = {}
    for spec in ensemble_specs(ev.phases):
        members = [m for m in spec["members"] if m in ev.logits]
        if members != spec["members"]:
            continue
        for row in cumulative_ensembles(ev.logits, ev.labels, members, spec["scales"]):
            out[f"{spec['name']}[{row['members'][0]}..{row['members'][-1]}]"] = row
    return out


def summarize_evaluations(test: Evaluation, train: Evaluation | None = None) -> dict:
    """Every statistic above for one run, JSON-ready (the report's `analysis.json`)."""
    distances = {ev.split: semantic_distance_table(ev) for ev in (train, test)
                 if ev is not None}
    return {"phases": phase_statistics(test, train), "agreement": teacher_agreement(test),
            "ensembles": workdir_ensembles(test), "distances": distances,
            "coarse_source": test.coarse_source, "num_test": int(len(test.labels)),
            "num_train": int(len(train.labels)) if train is not None else 0}


# -- several runs (seeds) -------------------------------------------------------------------
def load_results(workdir: str | pathlib.Path) -> dict:
    """A run's `results.json`."""
    return json.loads((pathlib.Path(workdir) / "results.json").read_text())


def mean_std(values: Sequence[float]) -> dict:
    """{'mean', 'std', 'n'}; std is the sample standard deviation (ddof=1), 0 for one run."""
    x = np.asarray(list(values), np.float64)
    std = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
    return {"mean": float(np.mean(x)) if len(x) else float("nan"), "std": std, "n": len(x)}


def aggregate_results(results_list: Sequence[Mapping]) -> dict:
    """Mean ± std over runs of each phase's best/last accuracy and each ensemble's accuracy.

    Args:
        results_list: `results.json` contents of several runs (seeds) of one config; phases
            and ensembles are matched by name, and a run lacking one is left out of its
            statistics (its 'n' says how many runs count).

    Returns:
        {'runs': R, 'phases': {name: {'best_top1': mean_std, 'last_top1': ...,
        'best_top5': ..., 'last_top5': ...}}, 'ensembles': {name: {'top1': ..., 'top5': ...}}}.
    """
    phases, ensembles = {}, {}
    for res in results_list:
        for rec in res.get("phases", []):
            row = phases.setdefault(rec["name"], {})
            for key in ("best_top1", "last_top1", "best_top5", "last_top5"):
                if key in rec:
                    row.setdefault(key, []).append(rec[key])
        for name, ens in res.get("ensembles", {}).items():
            row = ensembles.setdefault(name, {})
            for key in ("top1", "top5"):
                if key in ens:
                    row.setdefault(key, []).append(ens[key])
    return {"runs": len(results_list), "phases": _mean_std_table(phases),
            "ensembles": _mean_std_table(ensembles)}


def _mean_std_table(table: dict) -> dict:
    return {name: {k: mean_std(v) for k, v in row.items()} for name, row in table.items()}
