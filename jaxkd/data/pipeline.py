"""Batches for training and evaluation, sharded over the ('data',) mesh.

In-memory data sets (CIFAR) live on the devices: the uint8 images and labels of each split
are placed once, **replicated** on every device of the mesh. A training step then runs one
jitted function `(images, labels, indices, key) -> batch` that gathers the step's examples,
augments them with per-example keys and normalises them, with its output sharded
`P('data')`. Replication is the simple choice that needs no communication: with a
batch-sharded copy, gathering a random permutation would move rows between devices at every
step, while CIFAR in uint8 is only 150 MB (train + test of CIFAR-100: 184 MB per device).
With the indices sharded `P('data')`, each device gathers and augments only its own rows.

Data sets too large for that (ImageNet) go through `jaxkd.data.streaming`.

Randomness: the order of an epoch is `numpy.random.default_rng([seed, 3, epoch])`'s
permutation of the training set, and step `s` of epoch `e` augments with
`fold_in(fold_in(key(seed), e), s)`, so `train_batches(e, start_step=k)` yields exactly the
batches k, k+1, ... of an uninterrupted epoch. `e` counts the run's epochs, not a phase's:
each phase of a plan draws its own epochs (`jaxkd.plans.with_data_streams`).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxkd.data import augment as augment_lib
from jaxkd.data.dataset import Splits, check

DATA_AXIS = "data"
_SHUFFLE_STREAM = 3

log = logging.getLogger(__name__)


def check_batch_sizes(mesh: Mesh, batch_size: int, eval_batch_size: int) -> None:
    """Raises a ValueError naming the config field when a batch does not split evenly."""
    devices = mesh.devices.size
    for name, value in (("config.batch_size", batch_size),
                        ("config.eval_batch_size", eval_batch_size)):
        check(isinstance(value, (int, np.integer)) and value > 0,
              f"{name} must be a positive integer, got {value!r}")
        check(value % devices == 0, f"{name}={value} is not divisible by the {devices} "
              f"devices of the mesh; use a multiple of {devices}")


def eval_batch_sizes(splits: Splits, eval_batch_size: int, devices: int) -> dict[str, int]:
    """The evaluation batch of each split: `eval_batch_size`, clamped to the smallest
    multiple of `devices` that covers the split.

    A batch larger than that would only add padding (an eval_batch_size of 100,000 on a
    500-image test set evaluates 200 times the images). One warning names
    config.eval_batch_size when a split is clamped; results do not change (the padding
    is masked out either way).
    """
    sizes, clamped = {}, []
    for name in ("train", "test", "heldout"):
        split = getattr(splits, name)
        if split is None:
            continue
        cover = max(devices, -(-len(split) // devices) * devices)
        sizes[name] = min(int(eval_batch_size), cover)
        if sizes[name] < eval_batch_size:
            clamped.append(f"{name}: {len(split)} images, batches of {sizes[name]}")
    if clamped:
        log.warning("config.eval_batch_size=%d is larger than a split it evaluates; such a "
                    "split is evaluated in one batch of the smallest multiple of the %d "
                    "device(s) that covers it (%s)", eval_batch_size, devices,
                    "; ".join(clamped))
    return sizes


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch `epoch` visits the `n` training examples."""
    return np.random.default_rng([seed, _SHUFFLE_STREAM, epoch]).permutation(n)


@jax.jit
def _fold(key, epoch, step):
    return jax.random.fold_in(jax.random.fold_in(key, epoch), step)


def step_key(seed: int, epoch: int, step: int) -> jax.Array:
    """The augmentation key of training step `step` of epoch `epoch`."""
    return _fold(jax.random.key(seed), epoch, step)


def eval_plan(n: int, eval_batch_size: int):
    """Yields (indices int32[B], mask bool[B]) covering 0..n-1 once; padding is masked out."""
    for start in range(0, n, eval_batch_size):
        positions = np.arange(start, start + eval_batch_size)
        mask = positions < n
        yield np.where(mask, positions, 0).astype(np.int32), mask


def global_array(values: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A jax.Array of host `values` (identical on every process) with `sharding`."""
    return jax.make_array_from_callback(values.shape, sharding, lambda index: values[index])


class DevicePipeline:
    """Device-resident splits; gather + augment + normalise in one jitted function."""

    def __init__(self, splits: Splits, *, mesh: Mesh, batch_size: int,
                 eval_batch_size: int, augment_cfg: Any, seed: int):
        check_batch_sizes(mesh, batch_size, eval_batch_size)
        self.splits, self.seed = splits, int(seed)
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size)
        self.num_train = len(splits.train)
        self.steps_per_epoch = self.num_train // self.batch_size
        check(self.steps_per_epoch > 0, f"config.batch_size={batch_size} is larger than the "
              f"{self.num_train} training examples")
        self._eval_batch = eval_batch_sizes(splits, self.eval_batch_size, mesh.devices.size)
        self.sharding = NamedSharding(mesh, P(DATA_AXIS))
        replicated = NamedSharding(mesh, P())
        self._arrays = {}
        for name in ("train", "test", "heldout"):
            split = getattr(splits, name)
            if split is not None:
                self._arrays[name] = (global_array(split.images, replicated),
                                      global_array(split.labels.astype(np.int32), replicated))
        out = {"image": self.sharding, "label": self.sharding}
        augment = augment_lib.make_augment(augment_cfg)
        self._train_fn = jax.jit(functools.partial(_train_batch, augment=augment,
                                                   mean=splits.mean, std=splits.std),
                                 out_shardings=out)
        self._eval_fn = jax.jit(functools.partial(_eval_batch, mean=splits.mean,
                                                  std=splits.std),
                                out_shardings=dict(out, mask=self.sharding))

    def num_eval(self, split: str = "test") -> int:
        """Number of examples `eval_batches(split)` covers."""
        return len(self.splits.split(split))

    def eval_batch(self, split: str = "test") -> int:
        """The batch `eval_batches(split)` uses (`eval_batch_sizes`)."""
        self.splits.split(split)
        return self._eval_batch[split]

    def eval_steps(self, split: str = "test") -> int:
        """Number of batches `eval_batches(split)` yields (the last one padded)."""
        return -(-self.num_eval(split) // self.eval_batch(split))

    def train_indices(self, epoch: int, step: int) -> np.ndarray:
        """Training-set indices of batch `step` of epoch `epoch`."""
        start = step * self.batch_size
        order = epoch_permutation(self.seed, epoch, self.num_train)
        return order[start:start + self.batch_size].astype(np.int32)

    def train_batches(self, epoch: int, start_step: int = 0) -> Iterator[dict]:
        """Yields {'image': float32[B,H,W,C], 'label': int32[B]} for steps start_step...

        Args:
            epoch: 0-based epoch of the run's data stream (a phase's epoch plus its
                `data_epoch_offset`); fixes the order and the augmentation keys.
            start_step: first step to yield (resuming mid-epoch).
        """
        check(0 <= start_step <= self.steps_per_epoch,
              f"start_step={start_step} must be in [0, {self.steps_per_epoch}]")
        images, labels = self._arrays["train"]
        order = epoch_permutation(self.seed, epoch, self.num_train).astype(np.int32)
        for step in range(start_step, self.steps_per_epoch):
            batch = order[step * self.batch_size:(step + 1) * self.batch_size]
            yield self._train_fn(images, labels, global_array(batch, self.sharding),
                                 step_key(self.seed, epoch, step))

    def eval_batches(self, split: str = "test") -> Iterator[dict]:
        """Yields {'image', 'label', 'mask'} covering every example of `split` once."""
        self.splits.split(split)
        images, labels = self._arrays[split]
        for indices, mask in eval_plan(self.num_eval(split), self.eval_batch(split)):
            yield self._eval_fn(images, labels, global_array(indices, self.sharding),
                                global_array(mask, self.sharding))


def _train_batch(images, labels, indices, key, *, augment, mean, std):
    batch = jnp.take(images, indices, axis=0)
    return {"image": augment_lib.train_transform(batch, key, mean, std, augment),
            "label": jnp.take(labels, indices, axis=0)}


def _eval_batch(images, labels, indices, mask, *, mean, std):
    return {"image": augment_lib.eval_transform(jnp.take(images, indices, axis=0), mean, std),
            "label": jnp.take(labels, indices, axis=0), "mask": mask}


def make_pipeline(splits: Splits, *, mesh: Mesh, batch_size: int, eval_batch_size: int,
                  augment_cfg: Any, seed: int):
    """The batch pipeline for `splits`: device-resident, or streaming for large data sets.

    Args:
        splits: from `load_splits`.
        mesh: a mesh with a 'data' axis over all devices.
        batch_size: global training batch (`config.batch_size`), divisible by the devices.
        eval_batch_size: global evaluation batch (`config.eval_batch_size`).
        augment_cfg: `config.data.augment`.
        seed: the run's seed; fixes the order of every epoch and every augmentation.
    """
    if splits.streaming:
        from jaxkd.data import streaming  # Host decoding machinery only when needed.
        return streaming.StreamingPipeline(splits, mesh=mesh, batch_size=batch_size,
                                           eval_batch_size=eval_batch_size,
                                           augment_cfg=augment_cfg, seed=seed)
    return DevicePipeline(splits, mesh=mesh, batch_size=batch_size,
                          eval_batch_size=eval_batch_size, augment_cfg=augment_cfg, seed=seed)
