"""What the two batch pipelines share: the `Pipeline` contract and the batching rules.

`DevicePipeline` (`jaxkd.data.pipeline`, in-memory data sets) and `StreamingPipeline`
(`jaxkd.data.streaming`, data sets read example by example) both
  * check that both batch sizes split evenly over the mesh (`check_batch_sizes`);
  * visit epoch `e` in the order `epoch_permutation(seed, e, n)`, dropping the last
    partial batch, and augment step `s` of epoch `e` with `step_key(seed, e, s)`, so
    `train_batches(e, start_step=k)` yields exactly the batches k, k+1, ... of an
    uninterrupted epoch;
  * evaluate a split in batches of `eval_batch_sizes(...)`, the last one padded and its
    padding masked out (`eval_plan`);
  * finish a batch inside jit, on uint8 images already gathered or decoded
    (`to_train_batch`, `to_eval_batch`), with the output sharded `P(DATA_AXIS)`.
`PipelineBase` holds the state and the methods that follow from these rules; `Pipeline` is
the contract that the training loop (`jaxkd.engine.loop`), the runner (`jaxkd.run`) and
`jaxkd.analysis` rely on.

`epoch_permutation` is `numpy.random.default_rng([seed, 3, epoch])`'s permutation and
`step_key` is `fold_in(fold_in(key(seed), epoch), step)`; `epoch` counts the run's epochs,
not a phase's (each phase of a plan draws its own epochs, `jaxkd.plans.with_data_streams`).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxkd.data import augment as augment_lib
from jaxkd.data.dataset import Splits, check
from jaxkd.engine.sharding import DATA_AXIS, check_batch_size, data_parallel_size

_SHUFFLE_STREAM = 3

log = logging.getLogger(__name__)


@runtime_checkable
class Pipeline(Protocol):
    """The batches of a run: what `make_pipeline` returns and its callers use.

    Attributes:
        steps_per_epoch: training steps per epoch (the last partial batch is dropped).
        num_train: examples in the training split.
    """

    steps_per_epoch: int
    num_train: int
    # Whether `train_inputs` / `batch_at` exist: training steps can then be compiled into
    # one program of many steps (`config.steps_per_call`; the device-resident pipeline).
    traceable_batches: bool

    def num_eval(self, split: str = "test") -> int:
        """Number of examples `eval_batches(split)` covers."""

    def eval_batch(self, split: str = "test") -> int:
        """The global batch `eval_batches(split)` uses."""

    def eval_steps(self, split: str = "test") -> int:
        """Number of batches `eval_batches(split)` yields (the last one padded)."""

    def train_batches(self, epoch: int, start_step: int = 0) -> Iterator[dict]:
        """Yields {'image': float32[B,H,W,C], 'label': int32[B]} for steps start_step..."""

    def eval_batches(self, split: str = "test") -> Iterator[dict]:
        """Yields {'image', 'label', 'mask'} covering every example of `split` once."""


def check_batch_sizes(mesh: Mesh, batch_size: int, eval_batch_size: int) -> None:
    """Raises a ValueError naming the config field when a batch is not a positive
    integer or does not split evenly over the mesh."""
    check_batch_size(batch_size, mesh)
    check_batch_size(eval_batch_size, mesh, "config.eval_batch_size")


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


def traced_step_key(seed, epoch, step) -> jax.Array:
    """`step_key` inside a traced program (`seed`, `epoch`, `step` may be traced)."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), epoch), step)


_fold = jax.jit(traced_step_key, static_argnums=0)


def step_key(seed: int, epoch: int, step: int) -> jax.Array:
    """The augmentation key of training step `step` of epoch `epoch`."""
    return _fold(seed, epoch, step)


def eval_plan(n: int, eval_batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields (indices int32[B], mask bool[B]) covering 0..n-1 once; padding is masked out."""
    for start in range(0, n, eval_batch_size):
        positions = np.arange(start, start + eval_batch_size)
        mask = positions < n
        yield np.where(mask, positions, 0).astype(np.int32), mask


def to_train_batch(images, labels, key, *, augment, mean, std) -> dict:
    """A training batch from uint8 `images`: augmented with `key`, then normalised."""
    return {"image": augment_lib.train_transform(images, key, mean, std, augment),
            "label": labels}


def to_eval_batch(images, labels, mask, *, mean, std) -> dict:
    """An evaluation batch from uint8 `images`: normalised only, with its padding `mask`."""
    return {"image": augment_lib.eval_transform(images, mean, std), "label": labels,
            "mask": mask}


class PipelineBase:
    """Sizes, steps and evaluation batches common to both pipelines (see module docstring).

    Attributes:
        splits: the `Splits` batched.
        seed: fixes the order of every epoch and every augmentation.
        batch_size: global training batch.
        num_train: examples in the training split.
        steps_per_epoch: `num_train // batch_size`.
        sharding: `P(DATA_AXIS)` over the mesh, the sharding of every batch.
    """

    def __init__(self, splits: Splits, *, mesh: Mesh, batch_size: int,
                 eval_batch_size: int, seed: int):
        check_batch_sizes(mesh, batch_size, eval_batch_size)
        self.splits, self.seed, self.batch_size = splits, int(seed), int(batch_size)
        self.num_train = len(splits.train)
        self.steps_per_epoch = self.num_train // self.batch_size
        check(self.steps_per_epoch > 0, f"config.batch_size={batch_size} is larger than the "
              f"{self.num_train} training examples")
        self._eval_batch = eval_batch_sizes(splits, int(eval_batch_size),
                                            data_parallel_size(mesh))
        self.sharding = NamedSharding(mesh, P(DATA_AXIS))
        self.traceable_batches = False

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

    def _train_steps(self, start_step: int) -> range:
        """Steps start_step.. of an epoch; a ValueError when `start_step` is out of range."""
        check(0 <= start_step <= self.steps_per_epoch,
              f"start_step={start_step} must be in [0, {self.steps_per_epoch}]")
        return range(start_step, self.steps_per_epoch)

    def _step_rows(self, order: np.ndarray, step: int) -> np.ndarray:
        """The rows of `order` that training step `step` uses."""
        return order[step * self.batch_size:(step + 1) * self.batch_size]

    def _jit_batch_fns(self, train_fn: Callable, eval_fn: Callable,
                       augment: Any) -> tuple[Callable, Callable]:
        """`train_fn` and `eval_fn` jitted with this run's `augment`, mean and std, their
        outputs sharded like the batches."""
        mean, std = self.splits.mean, self.splits.std
        out = {"image": self.sharding, "label": self.sharding}
        train = jax.jit(functools.partial(train_fn, augment=augment, mean=mean, std=std),
                        out_shardings=out)
        evaluate = jax.jit(functools.partial(eval_fn, mean=mean, std=std),
                           out_shardings=dict(out, mask=self.sharding))
        return train, evaluate
