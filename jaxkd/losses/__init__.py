"""Per-example losses of the four papers, and a registry of them by name.

Two modules, both re-exported here:

- `jaxkd.losses.functions`: the pure math. Every public loss returns one value per example
  (shape ``[B]``); the caller reduces over the batch. Logits are cast to float32 before
  any arithmetic, so bfloat16 activations give float32 losses. Teacher quantities go
  through ``jax.lax.stop_gradient``. ``kl_divergence(p_logits, q_logits, T)`` is
  ``KL(softmax(p / T) || softmax(q / T))``, the one KL the others are built on.
- `jaxkd.losses.registry`: what the engine selects by ``config.loss.name``: `Outputs`,
  `LossSpec`, `LOSSES`, `get(name)` and `names()`.

Hyper-parameters given as concrete Python scalars are checked in Python (at trace time)
and a bad value raises ``ValueError`` naming the parameter and the value. Configs are
checked through the registry instead (``get(name).validate(params, num_classes)``), whose
errors name the config field, e.g. ``config.loss.temperature must be > 0, got -1``.

Papers, cited in the docstrings by these short names:
  [TT]  Yang et al., "Knowledge Distillation in Generations: More Tolerant Teachers Educate
        Better Students" (the tolerant teacher; Eqns 2-3).
  [BAN] Furlanello et al., "Born-Again Neural Networks", ICML 2018 (Eqn 5, BAN+L, CWTM,
        DKPP, BANE).
  [SD]  Yang et al., "Snapshot Distillation: Teacher-Student Optimization in One
        Generation", CVPR 2019 (Eqns 3 and 5).
  [RCO] Jin et al., "Knowledge Distillation via Route Constrained Optimization",
        ICCV 2019 (the KD loss with tau, and the hint variant).
  [KD]  Hinton et al., "Distilling the Knowledge in a Neural Network", 2015.
"""
from __future__ import annotations

from jaxkd.losses.functions import (Array, born_again_loss, confidence_penalty, cross_entropy,
                                    cwtm_loss, cwtm_weights, distillation_kl, dkpp_targets,
                                    ensemble_logits, eta_from_primary_score, hint_loss,
                                    kd_loss, kd_loss_terms, kl_divergence, online_route_loss,
                                    online_route_loss_terms, primary_score_from_eta,
                                    snapshot_distillation_loss, soft_cross_entropy,
                                    sum_terms, tolerant_teacher_loss,
                                    top_k_score_difference)
from jaxkd.losses.registry import LOSSES, LossSpec, Outputs, get, names

# The single-module `jaxkd.losses` also exposed its imports; they stay importable from here
# (`from jaxkd.losses import jnp` keeps working) but are not part of the API (`__all__`).
import dataclasses, functools, numbers, operator, types  # noqa: E401,F401,E402
from typing import Any, Callable, Mapping, NamedTuple, Sequence  # noqa: F401,E402

import jax  # noqa: F401,E402
import jax.numpy as jnp  # noqa: F401,E402
import numpy as np  # noqa: F401,E402

__all__ = [
    # The pure functions (jaxkd.losses.functions).
    "Array", "born_again_loss", "confidence_penalty", "cross_entropy", "cwtm_loss",
    "cwtm_weights", "distillation_kl", "dkpp_targets", "ensemble_logits",
    "eta_from_primary_score", "hint_loss", "kd_loss", "kd_loss_terms", "kl_divergence",
    "online_route_loss", "online_route_loss_terms", "primary_score_from_eta",
    "snapshot_distillation_loss", "soft_cross_entropy", "sum_terms",
    "tolerant_teacher_loss", "top_k_score_difference",
    # The registry (jaxkd.losses.registry).
    "LOSSES", "LossSpec", "Outputs", "get", "names",
]
