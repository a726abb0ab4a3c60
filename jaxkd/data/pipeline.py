"""Device-resident batches for in-memory data sets, and `make_pipeline`, which picks one.

In-memory data sets (CIFAR) live on the devices: the uint8 images and labels of each split
are placed once, **replicated** on every device of the mesh. A training step then runs one
jitted function `(images, labels, indices, key) -> batch` that gathers the step's examples,
augments them with per-example keys and normalises them, with its output sharded
`P('data')`. Replication is the simple choice that needs no communication: with a
batch-sharded copy, gathering a random permutation would move rows between devices at every
step, while CIFAR in uint8 is only 150 MB (train + test of CIFAR-100: 184 MB per device).
With the indices sharded `P('data')`, each device gathers and augments only its own rows.

Data sets too large for that (ImageNet) go through `jaxkd.data.streaming`. The order of an
epoch and the augmentation key of a step (from the seed, the run's epoch and the step) are
the same for both pipelines: see `jaxkd.data.batching`.
"""

from __future__ import annotations

from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxkd.data import augment as augment_lib
from jaxkd.data import batching
from jaxkd.data.batching import Pipeline, epoch_permutation, eval_plan, step_key
from jaxkd.data.dataset import Splits
from jaxkd.data.streaming import StreamingPipeline
from jaxkd.data.text import TextSplits
from jaxkd.data.text_pipeline import TextPipeline


def global_array(values: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A jax.Array of host `values` (identical on every process) with `sharding`."""
    return jax.make_array_from_callback(values.shape, sharding, lambda index: values[index])


class DevicePipeline(batching.PipelineBase):
    """Device-resident splits; gather + augment + normalise in one jitted function."""

    def __init__(self, splits: Splits, *, mesh: Mesh, batch_size: int,
                 eval_batch_size: int, augment_cfg: Any, seed: int):
        super().__init__(splits, mesh=mesh, batch_size=batch_size,
                         eval_batch_size=eval_batch_size, seed=seed)
        replicated = NamedSharding(mesh, P())
        self._arrays = {}
        for name in ("train", "test", "heldout"):
            split = getattr(splits, name)
            if split is not None:
                self._arrays[name] = (global_array(split.images, replicated),
                                      global_array(split.labels.astype(np.int32), replicated))
        self._augment = augment_lib.make_augment(augment_cfg)
        self._train_fn, self._eval_fn = self._jit_batch_fns(_train_batch, _eval_batch,
                                                            self._augment)
        self.traceable_batches = True

    def train_batches(self, epoch: int, start_step: int = 0) -> Iterator[dict]:
        """Yields {'image': float32[B,H,W,C], 'label': int32[B]} for steps start_step...

        Args:
            epoch: 0-based epoch of the run's data stream (a phase's epoch plus its
                `data_epoch_offset`); fixes the order and the augmentation keys.
            start_step: first step to yield (resuming mid-epoch).
        """
        steps = self._train_steps(start_step)
        images, labels = self._arrays["train"]
        order = epoch_permutation(self.seed, epoch, self.num_train).astype(np.int32)
        for step in steps:
            batch = self._step_rows(order, step)
            yield self._train_fn(images, labels, global_array(batch, self.sharding),
                                 step_key(self.seed, epoch, step))

    def train_inputs(self, epoch: int) -> dict:
        """What `batch_at` reads to build epoch `epoch`'s batches inside a program.

        A dict of device arrays (replicated): 'images' uint8[N,H,W,C], 'labels' int32[N],
        'order' (the epoch's permutation, int32[N]: one transfer per epoch instead of one
        index batch per step), 'seed' (int32[], the augmentation keys' seed), 'mean' and
        'std' (float32[C]). Packed seeds (`config.num_seeds`) stack one dict per seed.
        """
        images, labels = self._arrays["train"]
        order = epoch_permutation(self.seed, epoch, self.num_train).astype(np.int32)
        replicated = NamedSharding(self.sharding.mesh, P())
        small = {"order": order, "seed": np.asarray(self.seed, np.int32),
                 "mean": np.asarray(self.splits.mean, np.float32),
                 "std": np.asarray(self.splits.std, np.float32)}
        return {"images": images, "labels": labels,
                **{k: global_array(v, replicated) for k, v in small.items()}}

    def batch_at(self, inputs: dict, epoch, step) -> dict:
        """The batch `train_batches(epoch)` yields at `step`, inside a traced program.

        `inputs` is `train_inputs(epoch)` (or one seed's slice of a packed stack); `epoch`
        and `step` may be traced integers. The rows, the augmentation key and the
        arithmetic are those of `train_batches`, so the batch is the same.
        """
        rows = jax.lax.dynamic_slice_in_dim(inputs["order"], step * self.batch_size,
                                            self.batch_size)
        rows = jax.lax.with_sharding_constraint(rows, self.sharding)
        batch = _train_batch(inputs["images"], inputs["labels"], rows,
                             batching.traced_step_key(inputs["seed"], epoch, step),
                             augment=self._augment, mean=inputs["mean"], std=inputs["std"])
        return jax.lax.with_sharding_constraint(batch, {"image": self.sharding,
                                                        "label": self.sharding})

    def eval_batches(self, split: str = "test") -> Iterator[dict]:
        """Yields {'image', 'label', 'mask'} covering every example of `split` once."""
        self.splits.split(split)
        images, labels = self._arrays[split]
        for indices, mask in eval_plan(self.num_eval(split), self.eval_batch(split)):
            yield self._eval_fn(images, labels, global_array(indices, self.sharding),
                                global_array(mask, self.sharding))


def _train_batch(images, labels, indices, key, *, augment, mean, std):
    return batching.to_train_batch(jnp.take(images, indices, axis=0),
                                   jnp.take(labels, indices, axis=0), key,
                                   augment=augment, mean=mean, std=std)


def _eval_batch(images, labels, indices, mask, *, mean, std):
    return batching.to_eval_batch(jnp.take(images, indices, axis=0),
                                  jnp.take(labels, indices, axis=0), mask, mean=mean, std=std)


def make_pipeline(splits: Splits, *, mesh: Mesh, batch_size: int, eval_batch_size: int,
                  augment_cfg: Any, seed: int) -> Pipeline:
    """The batch pipeline for `splits`: device-resident, or streaming for large data sets.

    Args:
        splits: from `load_splits`.
        mesh: a mesh with a 'data' axis over all devices.
        batch_size: global training batch (`config.batch_size`), divisible by the devices.
        eval_batch_size: global evaluation batch (`config.eval_batch_size`).
        augment_cfg: `config.data.augment`.
        seed: the run's seed; fixes the order of every epoch and every augmentation.

    Returns:
        A `TextPipeline` for text (`jaxkd.data.text.TextSplits`), a `StreamingPipeline`
        when `splits.streaming`, else a `DevicePipeline`.
    """
    if isinstance(splits, TextSplits):
        return TextPipeline(splits, mesh=mesh, batch_size=batch_size,
                            eval_batch_size=eval_batch_size, seed=seed)
    kind = StreamingPipeline if splits.streaming else DevicePipeline
    return kind(splits, mesh=mesh, batch_size=batch_size, eval_batch_size=eval_batch_size,
                augment_cfg=augment_cfg, seed=seed)
