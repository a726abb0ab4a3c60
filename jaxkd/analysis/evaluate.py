"""A workdir's finished phases on a split, and the statistics of [TT] over them.

`evaluate_workdir` rebuilds a run from its `config.json` (a `jaxkd.workspace.Workspace`)
and returns every finished phase's logits (and penultimate features) on a split, read from
the phases' final checkpoints; `summarize_evaluations` turns them into the report's
`analysis.json`: accuracies, top-k confidences, calibration, teacher agreement, Dist^C /
Dist^S and every ensemble prefix.

References:
    [TT] Yang et al., 2018, Table 1, Figure 1, Eqn 4 and Table 2 (`jaxkd.analysis.stats`).
    [ECE] Guo et al., ICML 2017, Eqn 3.
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax.numpy as jnp
import numpy as np

from jaxkd import losses
from jaxkd import workdir as workdir_lib
from jaxkd.analysis import ensembles
from jaxkd.analysis.stats import (accuracy, expected_calibration_error, mean_kl,
                                  second_class_agreement, semantic_distances, top1_agreement,
                                  topk_confidences)
from jaxkd.workspace import Workspace

# CIFAR-10 has no superclasses; this two-group split (vehicles / animals) stands in for them
# when Dist^C / Dist^S are asked of a CIFAR-10 run. It is not the paper's setting.
CIFAR10_GROUPS = {"airplane": 0, "automobile": 0, "ship": 0, "truck": 0, "bird": 1, "cat": 1,
                  "deer": 1, "dog": 1, "frog": 1, "horse": 1}


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
                     features: bool = False, *, workspace: Workspace | None = None
                     ) -> Evaluation:
    """Logits (and features) of every finished phase of a run, from its final checkpoints.

    Args:
        workdir: a run's workdir (needs `config.json` and `phases/<name>/final`).
        split: 'train', 'test' or 'heldout' (evaluation transform, no augmentation).
        features: also return the penultimate features (for Dist^C / Dist^S).
        workspace: `Workspace.from_workdir(workdir)` to reuse: the data is then loaded
            once, and each architecture's predict program compiled once.

    Returns:
        An `Evaluation`; phases without a final checkpoint are left out.
    """
    ws = workspace if workspace is not None else Workspace.from_workdir(workdir)
    labels = ws.labels(split)
    done, logits, feats = [], {}, {}
    for phase in ws.plan:
        if not workdir_lib.has_final(ws.phase_dir(phase.name)):
            continue
        out = ws.ref_logits(ws.checkpoint_ref(phase), split, features=features)
        logits[phase.name], feats[phase.name] = out if features else (out, None)
        done.append(phase)
    coarse, source = _coarse_labels(ws.splits, split, labels)
    return Evaluation(split, done, logits, feats if features else None, labels, coarse,
                      source, tuple(ws.splits.class_names))


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


def summarize_evaluations(test: Evaluation, train: Evaluation | None = None) -> dict:
    """Every statistic above for one run, JSON-ready (the report's `analysis.json`)."""
    distances = {ev.split: semantic_distance_table(ev) for ev in (train, test)
                 if ev is not None}
    return {"phases": phase_statistics(test, train), "agreement": teacher_agreement(test),
            "ensembles": ensembles.workdir_ensembles(test), "distances": distances,
            "coarse_source": test.coarse_source, "num_test": int(len(test.labels)),
            "num_train": int(len(train.labels)) if train is not None else 0}
