"""The learning rate cut when the validation metric stops improving ([BAN] Sec. 4.2).

[BAN] trains its PTB language models with "an adaptive learning rate schedule ... with an
initial learning rate 1 that is multiplied by a factor of 0.25 if the validation perplexity
does not decrease after an epoch" (the CNN-LSTM: lr 2, factor 0.5, "if the validation
perplexity does not decrease by at least 0.5"). Such a rate depends on evaluations, not on
the step count, so it is not an optax schedule: it is a scale on the optimiser's updates
(`scale_by_plateau`, the last transform of the chain) whose value lives in the optimiser
state, so it is checkpointed with the TrainState and a resumed run continues with the
rate it had. At the end of every epoch the loop evaluates the held-out split and calls
`update` with its metric: the scale is multiplied by `factor` unless the metric is below
the best seen so far by more than `threshold`.

`config.schedule` fields (name 'plateau'): `base_lr`, `factor`, `plateau_threshold`
(0: any decrease counts) and `plateau_monitor` ('perplexity': exp of the held-out loss,
[BAN]'s rule; 'loss': the held-out cross-entropy itself). Compared with the best value so
far, as PyTorch's word_language_model example (Zaremba et al.'s recipe) does.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxkd.validation import fail, require_choice, require_number

NAME = "plateau"
MONITORS = ("perplexity", "loss")


class PlateauState(NamedTuple):
    """The update scale (1 at the start) and the best monitored value so far (the largest
    float32 at the start: finite, as the step's guard wants every state leaf to be)."""

    plateau_scale: jax.Array
    plateau_best: jax.Array


@dataclasses.dataclass(frozen=True)
class Plateau:
    """The rule of a 'plateau' schedule (`from_schedule`)."""

    factor: float
    threshold: float = 0.0
    monitor: str = "perplexity"

    def metric(self, loss) -> np.ndarray:
        """The monitored value of a held-out mean cross-entropy (per run when packed)."""
        if self.monitor == "perplexity":
            return perplexity(loss)
        return np.asarray(loss, np.float64)


def perplexity(loss) -> np.ndarray:
    """exp of a mean cross-entropy (elementwise; capped at exp(700), float64's range): a
    language model's per-token perplexity."""
    return np.exp(np.minimum(np.asarray(loss, np.float64), 700.0))


def from_schedule(schedule_cfg: Mapping[str, Any]) -> Plateau | None:
    """The plateau rule of `config.schedule`, or None when its name is not 'plateau'.

    Raises:
        ValueError: naming `config.schedule.<field>` for a bad factor, threshold or monitor.
    """
    cfg = dict(schedule_cfg)
    if cfg.get("name") != NAME:
        return None
    factor = require_number(cfg.get("factor", 0.1), "config.schedule.factor", low=0.0)
    if factor >= 1.0:
        fail("config.schedule.factor", "must be < 1 for 'plateau' (the rate's multiplier "
             "when the validation metric stops improving)", factor)
    threshold = require_number(cfg.get("plateau_threshold", 0.0),
                               "config.schedule.plateau_threshold", low=0.0)
    monitor = require_choice(cfg.get("plateau_monitor", "perplexity"),
                             "config.schedule.plateau_monitor", list(MONITORS))
    return Plateau(float(factor), float(threshold), monitor)


def scale_by_plateau() -> optax.GradientTransformation:
    """Multiplies the updates by the state's `plateau_scale` (changed only by `update`)."""

    def init(params):
        del params
        return PlateauState(jnp.ones([], jnp.float32),
                            jnp.full([], jnp.finfo(jnp.float32).max, jnp.float32))

    def update_fn(updates, state, params=None):
        del params
        updates = jax.tree_util.tree_map(lambda u: u * state.plateau_scale.astype(u.dtype),
                                         updates)
        return updates, state

    return optax.GradientTransformation(init, update_fn)


def with_plateau(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """`tx` followed by `scale_by_plateau`."""
    return optax.chain(tx, scale_by_plateau())


def scale_of(opt_state) -> np.ndarray | None:
    """The current update scale (per run when packed), or None without a plateau."""
    found = optax.tree_utils.tree_get(opt_state, "plateau_scale", default=None)
    return None if found is None else np.asarray(jax.device_get(found))


def decide(state: PlateauState, value, rule: Plateau) -> PlateauState:
    """One epoch's decision: keep the scale if `value` < best - threshold, else cut it.

    Elementwise, so packed runs (a leading run axis on every field and on `value`) each
    follow their own validation metric.
    """
    value = jnp.asarray(value, jnp.float32)
    improved = value < state.plateau_best - rule.threshold
    scale = jnp.where(improved, state.plateau_scale,
                      state.plateau_scale * jnp.float32(rule.factor))
    return PlateauState(scale, jnp.minimum(state.plateau_best, value))


def update(train_state, value, rule: Plateau):
    """`train_state` with its optimiser's plateau decided on `value` (see `decide`)."""
    opt_state = train_state.opt_state
    old = PlateauState(optax.tree_utils.tree_get(opt_state, "plateau_scale"),
                       optax.tree_utils.tree_get(opt_state, "plateau_best"))
    # one value per run (packed) or one value: the state's shape either way
    value = np.asarray(value, np.float32).reshape(old.plateau_best.shape)
    value = jax.device_put(value, old.plateau_best.sharding)
    new = decide(old, value, rule)
    opt_state = optax.tree_utils.tree_set(opt_state, plateau_scale=new.plateau_scale,
                                          plateau_best=new.plateau_best)
    return train_state.replace(opt_state=opt_state)


def summary(values: list[float]) -> dict:
    """A phase record's held-out numbers from its per-epoch held-out losses: the last and
    best loss and their perplexities ([BAN] Table 6's "Val" columns)."""
    if not values:
        return {}
    return {"last_heldout_loss": values[-1], "best_heldout_loss": min(values),
            "last_heldout_perplexity": float(perplexity(values[-1])),
            "best_heldout_perplexity": float(perplexity(min(values)))}
