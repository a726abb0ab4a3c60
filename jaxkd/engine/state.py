"""Training state (flax TrainState plus BatchNorm statistics) and the optimiser.

References:
    He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (SGD, momentum 0.9).
    Sutskever et al., "On the importance of initialization and momentum", ICML 2013 (Nesterov).
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
    """Flax TrainState with the model's BatchNorm running statistics."""

    batch_stats: Any = None


def _decay_mask(params) -> Any:
    """True for kernels; False for BatchNorm scales/biases and every bias (1-D leaves)."""
    return jax.tree_util.tree_map(lambda p: p.ndim > 1, params)


def make_optimizer(optimizer_cfg, schedule: optax.Schedule) -> optax.GradientTransformation:
    """SGD with (Nesterov) momentum and decoupled-from-loss L2 weight decay, or AdamW.

    Weight decay is an optax transform added to the gradient before momentum, which is
    exactly the papers' L2 regularisation with SGD (`wd * w` in the gradient). With
    `decay_mask='no_bn_bias'` BatchNorm parameters and biases are not decayed.

    Args:
        optimizer_cfg: `config.optimizer` (name, momentum, nesterov, weight_decay, decay_mask).
        schedule: learning rate as a function of the optimiser's step count.
    """
    mask = _decay_mask if optimizer_cfg.decay_mask == "no_bn_bias" else None
    if optimizer_cfg.name == "adamw":
        return optax.adamw(schedule, weight_decay=optimizer_cfg.weight_decay, mask=mask)
    parts = []
    if optimizer_cfg.weight_decay:
        parts.append(optax.add_decayed_weights(optimizer_cfg.weight_decay, mask=mask))
    parts.append(optax.sgd(schedule, momentum=optimizer_cfg.momentum or None,
                           nesterov=bool(optimizer_cfg.nesterov)))
    return optax.chain(*parts)


def init_variables(model, rng: jax.Array, image_shape) -> dict:
    """Initialises a model's variables (params and batch_stats) for one input shape."""
    dummy = jnp.zeros((1, *image_shape), jnp.float32)
    # Jitted: an eager init runs op by op, tens of seconds for a deep network on a CPU.
    init = jax.jit(lambda r, x: model.init({"params": r, "dropout": r}, x, train=False))
    return flax.core.unfreeze(init(rng, dummy))


def create_train_state(model, variables: dict, tx: optax.GradientTransformation) -> TrainState:
    """A fresh TrainState (step 0) from initialised or inherited variables."""
    return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                             batch_stats=variables.get("batch_stats", {}))


def variables_of(state: TrainState) -> dict:
    """The variables a model needs for inference: params and batch_stats."""
    return {"params": state.params, "batch_stats": state.batch_stats}


def offset_schedule(schedule: Callable, start_step: int) -> Callable:
    """Evaluates `schedule` at the phase-local step when the optimiser count continues."""
    if not start_step:
        return schedule
    return lambda count: schedule(jnp.maximum(count - start_step, 0))
