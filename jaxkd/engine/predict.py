"""Predictions of a trained network on a whole split: logits, features, labels.

The evaluation side of the engine: `predict_split` runs a network over every example of a
split (the evaluation transform, no augmentation), the padding of the last batch removed,
and returns numpy arrays; `Programs` keeps one compiled predict program per architecture,
so a report or an ensemble over many checkpoints of one model compiles once.
"""

from __future__ import annotations

from typing import Hashable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxkd.engine import progress as progress_lib
from jaxkd.engine import step as step_lib


class Programs:
    """Compiled predict programs by (architecture key, features)."""

    def __init__(self, mesh: Mesh, dtype=jnp.float32):
        self.mesh, self.dtype = mesh, dtype
        self._compiled: dict = {}

    def get(self, key: Hashable, model, features: bool = False):
        """The program of `model` (built once per `key` and `features`)."""
        if (key, features) not in self._compiled:
            self._compiled[key, features] = step_lib.make_predict_step(
                model, mesh=self.mesh, features=features, dtype=self.dtype)
        return self._compiled[key, features]


def predict_split(model, variables, pipeline, mesh: Mesh, split: str = "test", *,
                  features: bool = False, dtype=jnp.float32, predict=None,
                  progress: str | None = None):
    """Logits (and features) of every example of a split, padding removed, as numpy.

    Args:
        model: the Flax module.
        variables: its {'params', 'batch_stats'} (an ensemble is not accepted here).
        pipeline: a `jaxkd.data` pipeline (its `eval_batches(split)`).
        mesh: the device mesh the batches are sharded over.
        split: 'train', 'test' or 'heldout'.
        features: also return the penultimate features.
        dtype: the activations' dtype.
        predict: a program from `Programs.get` (or `make_predict_step`) built with the
            same `features`, to reuse one compiled program across checkpoints.
        progress: a description to show a progress bar over the split's batches under
            (on process 0, stderr; gone when done); None: no bar.

    Returns:
        float32[N, C] logits, or (logits, float32[N, D] features) with `features`.
    """
    if predict is None:
        predict = step_lib.make_predict_step(model, mesh=mesh, features=features,
                                             dtype=dtype)
    logits, feats = [], []
    bar = progress_lib.bar(progress is not None, pipeline.eval_steps(split), 0,
                           progress or "", unit="batch")
    for batch in pipeline.eval_batches(split):
        lg, ft = jax.device_get(predict(variables, batch))
        mask = np.asarray(jax.device_get(batch["mask"]), bool).reshape(-1)   # tokens: [B*T]
        logits.append(lg[mask])
        if features:
            feats.append(ft[mask])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    logits = np.concatenate(logits)
    return (logits, np.concatenate(feats)) if features else logits


def split_labels(pipeline, split: str = "test") -> np.ndarray:
    """Labels of a split in evaluation order, padding removed."""
    out = []
    for batch in pipeline.eval_batches(split):
        mask = np.asarray(jax.device_get(batch["mask"]), bool).reshape(-1)
        out.append(np.asarray(jax.device_get(batch["label"])).reshape(-1)[mask])
    return np.concatenate(out)
