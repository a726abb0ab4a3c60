"""Analysis of trained phases: logits of a split, and the ensembles the papers report.

References:
    [BAN] Furlanello et al., 2018, Section 3.2 (BANE: mean of the generations' softmax).
    [SD] Yang et al., 2019, Section 4.1 (snapshot ensembles; SD ensemble with the k-th
        snapshot's logits scaled by T^(k-1)).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxkd import losses
from jaxkd.engine import state as state_lib
from jaxkd.engine import step as step_lib


def predict_split(model, variables, pipeline, mesh, split: str = "test", *,
                  features: bool = False, dtype=jnp.float32):
    """Logits (and features) of every example of a split, padding removed, as numpy."""
    predict = step_lib.make_predict_step(model, mesh=mesh, features=features, dtype=dtype)
    logits, feats = [], []
    for batch in pipeline.eval_batches(split):
        lg, ft = jax.device_get(predict(variables, batch))
        mask = np.asarray(jax.device_get(batch["mask"]), bool)
        logits.append(lg[mask])
        if features:
            feats.append(ft[mask])
    logits = np.concatenate(logits)
    return (logits, np.concatenate(feats)) if features else logits


def split_logits(runner, phase, state, split: str) -> np.ndarray:
    """Logits of a student state of `phase` on a split."""
    return predict_split(runner.phase_model(phase), state_lib.variables_of(state),
                         runner.pipeline, runner.mesh, split)


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
    labels = split_labels(runner.pipeline, "test")
    needed = sorted({i for _, members, _ in specs for i in members})
    logits = {i: split_logits(runner, runner.plan[i], runner.final_state(i), "test")
              for i in needed}
    return {name: dict(ensemble_accuracy([logits[i] for i in members], labels, scales),
                       members=[runner.plan[i].name for i in members], scales=scales)
            for name, members, scales in specs}
