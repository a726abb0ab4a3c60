"""Training state (flax TrainState plus BatchNorm statistics) and the optimiser.

Parameters are named by '/'-separated path prefixes of the params tree (`'Conv_0'`,
`'head'`, `'BasicBlock_0/Conv_1'`): `config.optimizer.frozen` freezes them and
`config.init.subtrees` copies them from a checkpoint ([BAN] Table 5: the student shares
its teacher's first convolution and classifier, frozen).

References:
    He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (SGD, momentum 0.9).
    Sutskever et al., "On the importance of initialization and momentum", ICML 2013 (Nesterov).
    [BAN] Furlanello et al., "Born-Again Neural Networks", ICML 2018, Table 5.
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax
from flax import traverse_util
from flax.training import train_state


class TrainState(train_state.TrainState):
    """Flax TrainState with the model's BatchNorm running statistics."""

    batch_stats: Any = None


def _decay_mask(params) -> Any:
    """True for kernels; False for BatchNorm scales/biases and every bias (1-D leaves)."""
    return jax.tree_util.tree_map(lambda p: p.ndim > 1, params)


def under_prefix(path: str, prefix: str) -> bool:
    """Whether the '/'-joined leaf path `path` lies in the subtree named `prefix`."""
    prefix = prefix.strip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def prefix_mask(params, prefixes, field: str) -> Any:
    """True for the leaves of `params` under one of `prefixes` ('/'-separated paths).

    Raises:
        ValueError: naming `field`, when a prefix names no parameter (a typo would
            otherwise freeze nothing).
    """
    flat = traverse_util.flatten_dict(flax.core.unfreeze(params), sep="/")
    for prefix in prefixes:
        if not any(under_prefix(k, prefix) for k in flat):
            raise ValueError(f"{field}: {prefix!r} names no parameter of the model; its "
                             f"top-level names are {sorted(params)}")
    mask = {k: any(under_prefix(k, p) for p in prefixes) for k in flat}
    return traverse_util.unflatten_dict(mask, sep="/")


def make_optimizer(optimizer_cfg, schedule: optax.Schedule) -> optax.GradientTransformation:
    """SGD with (Nesterov) momentum and decoupled-from-loss L2 weight decay, or AdamW.

    Weight decay is an optax transform added to the gradient before momentum, which is
    exactly the papers' L2 regularisation with SGD (`wd * w` in the gradient). With
    `decay_mask='no_bn_bias'` BatchNorm parameters and biases are not decayed.

    `optimizer_cfg.lr_scales` ({prefix: factor}) multiplies the learning rate of the
    parameters under a prefix ([RCO] RL: the `route_pair`'s teacher at 5x its student's
    0.01). `optimizer_cfg.frozen` (parameter-path prefixes) routes those parameters to
    `optax.set_to_zero()`: no gradient step, no weight decay, no momentum state, so they
    stay bit-identical ([BAN] Table 5's shared, frozen conv1 and classifier). BatchNorm
    running statistics are not parameters: those of a frozen BatchNorm still update in
    training mode (freeze a subtree without BatchNorm, as [BAN] does, to keep it exact).

    `optimizer_cfg.clip_grad_norm` > 0 first clips the gradient's global norm (LSTMs).

    Args:
        optimizer_cfg: `config.optimizer` (name, momentum, nesterov, weight_decay,
            decay_mask, frozen, clip_grad_norm).
        schedule: learning rate as a function of the optimiser's step count.

    Raises:
        ValueError: naming config.optimizer.frozen, at `init`, when a prefix names no
            parameter of the model.
    """
    tx = _base_optimizer(optimizer_cfg, schedule)
    frozen = tuple(optimizer_cfg.get("frozen", ()) or ())
    scales = dict(optimizer_cfg.get("lr_scales", {}) or {})
    if not frozen and not scales:
        return _clipped(optimizer_cfg, tx)
    transforms = {"train": tx, "frozen": optax.set_to_zero()}
    for i, (prefix, scale) in enumerate(sorted(scales.items())):
        transforms[f"scale{i}"] = _base_optimizer(
            optimizer_cfg, lambda count, s=float(scale): s * schedule(count))

    def labels(params):
        out = jax.tree_util.tree_map(lambda _: "train", params)
        for i, prefix in enumerate(sorted(scales)):
            mask = prefix_mask(params, (prefix,), "config.optimizer.lr_scales")
            out = jax.tree_util.tree_map(lambda m, l, i=i: f"scale{i}" if m else l, mask, out)
        mask = prefix_mask(params, frozen, "config.optimizer.frozen")
        return jax.tree_util.tree_map(lambda m, l: "frozen" if m else l, mask, out)

    return _clipped(optimizer_cfg, optax.multi_transform(transforms, labels))


def _clipped(optimizer_cfg, tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """`tx` after clipping the whole gradient's global norm to `clip_grad_norm` (> 0;
    Zaremba et al. 2014's LSTMs: 5 or 10), or `tx` itself."""
    clip = float(optimizer_cfg.get("clip_grad_norm", 0.0) or 0.0)
    return optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx


def _base_optimizer(optimizer_cfg, schedule: optax.Schedule) -> optax.GradientTransformation:
    mask = _decay_mask if optimizer_cfg.decay_mask == "no_bn_bias" else None
    if optimizer_cfg.name == "adamw":
        return optax.adamw(schedule, weight_decay=optimizer_cfg.weight_decay, mask=mask)
    parts = []
    if optimizer_cfg.weight_decay:
        parts.append(optax.add_decayed_weights(optimizer_cfg.weight_decay, mask=mask))
    parts.append(optax.sgd(schedule, momentum=optimizer_cfg.momentum or None,
                           nesterov=bool(optimizer_cfg.nesterov)))
    return optax.chain(*parts)


_INIT_PROGRAMS: dict = {}


def _init_program(model) -> Callable:
    """One jitted init per (equal) module: a fresh generation of a run reuses the program
    compiled for the first (5-8 s for a ResNet-8 on a loaded 2-core CPU, every time,
    when each call jitted a new lambda). Linen modules hash by their fields."""
    def build():
        return jax.jit(lambda r, x: model.init({"params": r, "dropout": r}, x, train=False))
    try:
        if model not in _INIT_PROGRAMS:
            _INIT_PROGRAMS[model] = build()
        return _INIT_PROGRAMS[model]
    except TypeError:     # a module with an unhashable field: no reuse
        return build()


def init_variables(model, rng: jax.Array, image_shape) -> dict:
    """Initialises a model's variables (params and batch_stats) for one input shape."""
    dummy = jnp.zeros((1, *image_shape), jnp.float32)
    # Jitted: an eager init runs op by op, tens of seconds for a deep network on a CPU.
    return flax.core.unfreeze(_init_program(model)(rng, dummy))


COLLECTIONS = ("params", "batch_stats")


def graft_subtrees(variables: dict, source: dict, subtrees=(), *, where: str) -> dict:
    """`variables` with the named subtrees (params and batch_stats) taken from `source`.

    Args:
        variables: the model's freshly initialised {'params', 'batch_stats'}.
        source: the checkpoint's variables as saved (any architecture).
        subtrees: '/'-separated path prefixes ('Conv_0', 'head'); empty: the whole model.
        where: the checkpoint path, for errors.

    Raises:
        ValueError: naming config.init.subtrees when a prefix names nothing in the model,
            or config.init.checkpoint and the leaf path when the checkpoint lacks it, has
            extra leaves under it, or holds another shape.
    """
    flat = {c: traverse_util.flatten_dict(flax.core.unfreeze(variables.get(c, {})), sep="/")
            for c in COLLECTIONS}
    saved = {c: traverse_util.flatten_dict(flax.core.unfreeze(source.get(c, {})), sep="/")
             for c in COLLECTIONS}
    taken = {}
    for prefix in tuple(subtrees) or ("",):
        if not any(under_prefix(k, prefix) for c in COLLECTIONS for k in flat[c]):
            raise ValueError(f"config.init.subtrees: {prefix!r} names no parameter of the "
                             f"model; its top-level names are {sorted(variables['params'])}")
        for c in COLLECTIONS:
            keys = sorted({k for k in (*flat[c], *saved[c]) if under_prefix(k, prefix)})
            for shapes in (False, True):   # a missing leaf first: it names the difference
                for k in keys:
                    _check_leaf(flat[c].get(k), saved[c].get(k), f"{c} {k!r}", prefix, where,
                                shapes=shapes)
            taken.update({(c, k): jnp.asarray(saved[c][k], flat[c][k].dtype) for k in keys})
    for (c, k), value in taken.items():
        flat[c][k] = value
    return {c: traverse_util.unflatten_dict(flat[c], sep="/") for c in COLLECTIONS}


def _check_leaf(mine, theirs, leaf: str, prefix: str, where: str, *, shapes: bool) -> None:
    """Raises a ValueError naming config.init.checkpoint and `leaf` unless both sides hold
    it (`shapes=False`) or it has one shape (`shapes=True`)."""
    subtree = f"(config.init.subtrees {prefix or '<whole model>'!r})"
    if not shapes and (mine is None or theirs is None):
        side = "checkpoint" if mine is None else "model"
        raise ValueError(f"config.init.checkpoint {where}: {leaf} is only in the {side} "
                         f"{subtree}: not the same architecture there")
    if shapes and tuple(mine.shape) != tuple(theirs.shape):
        raise ValueError(f"config.init.checkpoint {where}: {leaf} has shape "
                         f"{tuple(theirs.shape)}, the model's is {tuple(mine.shape)} {subtree}")


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
