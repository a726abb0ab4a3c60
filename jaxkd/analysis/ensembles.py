"""Ensembles of trained phases: BANE, the TT ensemble, snapshot and SD ensembles.

An ensemble averages its members' softmax outputs (`jaxkd.losses.ensemble_logits`); the SD
ensemble first scales the k-th snapshot's logits by T^(k-1). `ensemble_specs(plan)` says
which ensembles a plan calls for; `plan_ensembles(workspace)` evaluates them at the end of
a run; `cumulative_ensembles` / `workdir_ensembles` give every prefix of them (generations
1..m, snapshots 1..k) for the report.

References:
    [BAN] Furlanello et al., 2018, Section 3.2 (BANE: mean of the generations' softmax).
    [SD] Yang et al., 2019, Section 4.1 (snapshot ensembles; SD ensemble with the k-th
        snapshot's logits scaled by T^(k-1)).
    [TT] Yang et al., 2018, Section 4 and Table 4 (ensembles of generations, the patriarch
        included).
"""

from __future__ import annotations

import logging
import time
from typing import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from jaxkd import losses
from jaxkd.analysis.stats import topk_accuracy

log = logging.getLogger(__name__)


def ensemble_accuracy(member_logits: Sequence[np.ndarray], labels: np.ndarray,
                      scales: Sequence[float] | None = None) -> dict:
    """Top-1/top-5 of the mean-softmax ensemble (`jaxkd.losses.ensemble_logits`)."""
    logits = np.asarray(losses.ensemble_logits([jnp.asarray(m) for m in member_logits],
                                               scales=scales))
    return {"top1": topk_accuracy(logits, labels, 1), "top5": topk_accuracy(logits, labels, 5)}


def sd_ensemble_scales(temperature: float, count: int) -> list[float]:
    """Logit scales of an SD ensemble of `count` snapshots: T^0, T^1, ..., T^(count-1).

    References:
        [SD] Section 4.1: the k-th snapshot's logits are multiplied by T^(k-1) before the
        softmax outputs are averaged.
    """
    return [float(temperature) ** k for k in range(count)]


def ensemble_specs(plan) -> list[dict]:
    """The ensembles a plan calls for: [{'name', 'members' (phase names), 'scales'}].

    'bane' ([BAN]: generations 1..M), 'tt_ensemble' ([TT] Table 4: all generations, the
    patriarch Gen #0 too), 'snapshot_ensemble' and, with a temperature, 'sd_ensemble'
    ([SD] Section 4.1).
    """
    def names(role):
        return [p.name for p in plan if p.role == role]

    gens, patriarch, cycles = names("generation"), names("patriarch"), names("mini_generation")
    specs = []
    if len(gens) >= 2:
        specs.append(dict(name="bane", members=gens, scales=None))
    if patriarch and gens:
        specs.append(dict(name="tt_ensemble", members=patriarch + gens, scales=None))
    if len(cycles) >= 2:
        specs.append(dict(name="snapshot_ensemble", members=cycles, scales=None))
        temps = [dict(p.loss_params).get("temperature") for p in plan
                 if p.role == "mini_generation"]
        t = next((x for x in temps if x), None)
        if t:
            specs.append(dict(name="sd_ensemble", members=cycles,
                              scales=sd_ensemble_scales(t, len(cycles))))
    return specs


def plan_ensembles(workspace) -> dict:
    """Evaluates the ensembles of the finished plan of a `jaxkd.workspace.Workspace` on
    the test split: {name: {'top1', 'top5', 'members', 'scales'}}."""
    specs = ensemble_specs(workspace.plan)
    if not specs:
        return {}
    t0 = time.perf_counter()
    labels = workspace.labels("test")
    needed = list(dict.fromkeys(m for s in specs for m in s["members"]))
    log.info("ensembles %s: test logits of %d phases (%s)",
             ", ".join(s["name"] for s in specs), len(needed), ", ".join(needed))
    logits = {}
    for n, name in enumerate(needed, start=1):
        t, index = time.perf_counter(), workspace.index_of(name)
        logits[name] = workspace.state_logits(workspace.plan[index],
                                              workspace.final_state(index), "test")
        log.info("ensembles: phase %s (%d/%d) predicted in %.1f s", name, n, len(needed),
                 time.perf_counter() - t)
    out = {}
    for spec in specs:
        out[spec["name"]] = dict(ensemble_of(logits, labels, spec["members"], spec["scales"]),
                                 members=spec["members"], scales=spec["scales"])
        log.info("ensemble %s (%s): test top-1 %.4f top-5 %.4f", spec["name"],
                 "+".join(spec["members"]), out[spec["name"]]["top1"],
                 out[spec["name"]]["top5"])
    log.info("ensembles evaluated in %.1f s", time.perf_counter() - t0)
    return out


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


def workdir_ensembles(ev) -> dict:
    """The plan's ensembles over every prefix of their members, e.g. 'bane[gen1..gen3]',
    from an `jaxkd.analysis.evaluate.Evaluation` (phases lacking a checkpoint: skipped)."""
    out = {}
    for spec in ensemble_specs(ev.phases):
        members = [m for m in spec["members"] if m in ev.logits]
        if members != spec["members"]:
            continue
        for row in cumulative_ensembles(ev.logits, ev.labels, members, spec["scales"]):
            out[f"{spec['name']}[{row['members'][0]}..{row['members'][-1]}]"] = row
    return out
