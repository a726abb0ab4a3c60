"""Route constrained optimisation: greedy anchor selection (RCO Algorithm 2).

References:
    Jin et al., "Knowledge Distillation via Route Constrained Optimization", ICCV 2019,
    Section 3.3 and Algorithm 2.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxkd import losses

log = logging.getLogger(__name__)


def greedy_next_anchor(kl_to_anchor: Sequence[float], current: int, delta: float) -> int:
    """Index of the next anchor after `current`: [RCO] Algorithm 2.

    With H_j = KL(student || anchor_j) on the held-out split and
    r_ij = (H_j - H_i) / H_i, the loop runs j = i+1, ... while j < N and returns j - 1 at
    the first r_ij > delta; when none exceeds delta it returns N, the converged teacher
    (H_N itself is never compared). One deviation: where r_{i,i+1} > delta already,
    Algorithm 2 returns i, the anchor just learned, and a second full stage on it could
    repeat forever; the route advances to i + 1 instead, so it ends after at most N stages.

    Args:
        kl_to_anchor: H_j for every anchor j (0-based, ascending training time); only the
            entries current..N-2 are read.
        current: index i of the anchor the student has just learned from.
        delta: the threshold (0.8 in the paper).

    Returns:
        The index of the next anchor, in (current, len(kl_to_anchor) - 1].
    """
    last = len(kl_to_anchor) - 1
    if current >= last:
        return last
    h_i = max(float(kl_to_anchor[current]), 1e-12)
    for j in range(current + 1, last):          # while j < N (0-based: j < last)
        if (float(kl_to_anchor[j]) - h_i) / h_i > delta:
            return max(j - 1, current + 1)
    return last


def mean_kl(student_logits: np.ndarray, teacher_logits: np.ndarray) -> float:
    """Mean KL(softmax(student) || softmax(teacher)) over examples (the H of Algorithm 2)."""
    return float(jnp.mean(losses.distillation_kl(jnp.asarray(teacher_logits),
                                                 jnp.asarray(student_logits))))


def _anchor_logits(runner, ref) -> np.ndarray:
    """Held-out logits of an anchor, computed once per run (anchors never change)."""
    from jaxkd import analysis
    cache = runner.__dict__.setdefault("_anchor_logits", {})
    if ref not in cache:
        cache[ref] = analysis.split_logits_of_ref(runner, ref, "heldout")
    return cache[ref]


def select_anchor(runner, index: int, student_state):
    """Resolves a 'greedy' TeacherRef of plan[index] to a concrete anchor (a TeacherRef).

    The first student stage learns from the first anchor. Every later stage evaluates the
    student that finished the previous stage on the held-out split against the anchors it
    may move to and applies `greedy_next_anchor` from the anchor that stage used. The
    choice is kept in `rco_route.json`, so a resumed stage keeps it.
    """
    from jaxkd import analysis  # local: analysis imports the engine
    phase = runner.plan[index]
    anchors = runner.anchor_refs(phase)
    prev = runner.plan[index - 1] if index else None
    if str(index) in runner.route():     # a resumed stage keeps the anchor it chose
        chosen = runner.chosen_anchor(index)
    elif prev is None or prev.teacher is None or prev.teacher.select != "greedy":
        chosen = 0
    else:
        current = runner.chosen_anchor(index - 1)
        student = analysis.split_logits(runner, phase, student_state, "heldout")
        kl = [mean_kl(student, _anchor_logits(runner, ref))
              if current <= j < len(anchors) - 1 else float("nan")
              for j, ref in enumerate(anchors)]
        chosen = greedy_next_anchor(kl, current, runner.config.rco.delta)
        log.info("RCO greedy: after anchor %d, H=%s -> anchor %d", current,
                 np.round(kl, 4).tolist(), chosen)
    runner.remember_anchor(index, chosen)
    return dataclasses.replace(anchors[chosen], select="")


def trim_to_route(plan: list, route: dict) -> list:
    """The plan up to the greedy stage that learned the last anchor (Algorithm 2's end).

    A greedy RCO plan lists one stage per anchor, the most Algorithm 2 can take; the run
    stops after the stage whose chosen anchor (`route`, plan index -> anchor index, as in
    `rco_route.json`) is the converged teacher.
    """
    for index, phase in enumerate(plan):
        ref = phase.teacher
        if ref is not None and ref.select == "greedy" and \
                route.get(str(index)) == len(ref.route) - 1:
            return plan[:index + 1]
    return plan
