"""Streaming batches for data sets read example by example (ImageNet through TFDS).

Each process decodes only its own part of every global batch (rows
`[process_index * B / P, (process_index + 1) * B / P)`), in a thread pool on the host,
and the global array is assembled with `jax.make_array_from_process_local_data`. A couple
of batches are prepared ahead in a background thread. Host work per example:
  * training, `augment.kind='imagenet'`: random-resized crop to `image_size` and a random
    flip (`host_ops.random_resized_crop`) with a numpy generator seeded by
    (seed, epoch, example index), so the result does not depend on thread timing;
  * otherwise, and for evaluation: the central crop (`host_ops.center_crop`); with
    `augment.kind='cifar'` the jitted device step then pads, crops and flips.
The device step normalises (and applies the CIFAR augmentation if asked) inside jit, so
images cross the host-device link as uint8.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import os
from typing import Any, Iterator

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxkd.data import augment as augment_lib
from jaxkd.data import host_ops
from jaxkd.data.dataset import Splits, augment_field, check
from jaxkd.data.pipeline import (DATA_AXIS, check_batch_sizes, epoch_permutation,
                                 eval_batch_sizes, eval_plan, step_key)

_AUGMENT_STREAM = 4
PREFETCH = 2


class StreamingPipeline:
    """Host decoding + device normalisation for data sets that do not fit in memory."""

    def __init__(self, splits: Splits, *, mesh: Mesh, batch_size: int, eval_batch_size: int,
                 augment_cfg: Any, seed: int, num_threads: int | None = None):
        check_batch_sizes(mesh, batch_size, eval_batch_size)
        self.splits, self.seed, self.size = splits, int(seed), splits.image_size
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size)
        self.num_train = len(splits.train)
        self.steps_per_epoch = self.num_train // self.batch_size
        check(self.steps_per_epoch > 0, f"config.batch_size={batch_size} is larger than the "
              f"{self.num_train} training examples")
        self._eval_batch = eval_batch_sizes(splits, self.eval_batch_size, mesh.devices.size)
        self.sharding = NamedSharding(mesh, P(DATA_AXIS))
        self._process, self._processes = jax.process_index(), jax.process_count()
        self._host_crop = augment_field(augment_cfg, "kind") == "imagenet"
        self._flip = bool(augment_field(augment_cfg, "flip"))
        device_augment = augment_lib.make_augment(augment_cfg) if not self._host_crop \
            else augment_lib.make_augment({"kind": "none"})
        out = {"image": self.sharding, "label": self.sharding}
        self._train_fn = jax.jit(functools.partial(
            _train_batch, augment=device_augment, mean=splits.mean, std=splits.std),
            out_shardings=out)
        self._eval_fn = jax.jit(functools.partial(_eval_batch, mean=splits.mean,
                                                  std=splits.std),
                                out_shardings=dict(out, mask=self.sharding))
        self._pool = concurrent.futures.ThreadPoolExecutor(num_threads or os.cpu_count() or 1)

    def num_eval(self, split: str = "test") -> int:
        return len(self.splits.split(split))

    def eval_batch(self, split: str = "test") -> int:
        """The batch `eval_batches(split)` uses (`pipeline.eval_batch_sizes`)."""
        self.splits.split(split)
        return self._eval_batch[split]

    def eval_steps(self, split: str = "test") -> int:
        return -(-self.num_eval(split) // self.eval_batch(split))

    def _local(self, rows: np.ndarray) -> np.ndarray:
        """This process's part of a global batch of rows."""
        per = len(rows) // self._processes
        return rows[self._process * per:(self._process + 1) * per]

    def _decode(self, split, indices, train_epoch: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Reads and crops `indices` of `split` into uint8[b, S, S, 3] and int32[b]."""
        examples = split.read(indices)

        def one(item):
            (image, _), index = item
            image = host_ops.to_rgb(image)
            if train_epoch is not None and self._host_crop:
                rng = np.random.default_rng([self.seed, _AUGMENT_STREAM, train_epoch, index])
                return host_ops.random_resized_crop(image, self.size, rng, self._flip)
            return host_ops.center_crop(image, self.size)

        images = np.stack(list(self._pool.map(one, zip(examples, indices))))
        labels = np.array([label for _, label in examples], np.int32)
        num_classes = self.splits.num_classes
        check(labels.min() >= 0 and labels.max() < num_classes,
              f"{getattr(split, 'name', 'stream')}: labels out of range: found "
              f"[{labels.min()}, {labels.max()}] but there are {num_classes} classes")
        return images, labels

    def _global(self, local: np.ndarray) -> jax.Array:
        shape = (len(local) * self._processes,) + local.shape[1:]
        return jax.make_array_from_process_local_data(self.sharding, local, shape)

    def _train_host(self, order: np.ndarray, epoch: int, step: int):
        rows = order[step * self.batch_size:(step + 1) * self.batch_size]
        images, labels = self._decode(self.splits.train, self._local(rows), epoch)
        return self._global(images), self._global(labels)

    def train_batches(self, epoch: int, start_step: int = 0) -> Iterator[dict]:
        """Yields {'image': float32[B,S,S,3], 'label': int32[B]} for steps start_step..."""
        check(0 <= start_step <= self.steps_per_epoch,
              f"start_step={start_step} must be in [0, {self.steps_per_epoch}]")
        order = epoch_permutation(self.seed, epoch, self.num_train)
        steps = range(start_step, self.steps_per_epoch)
        host = _prefetch((functools.partial(self._train_host, order, epoch, s) for s in steps))
        for step, (images, labels) in zip(steps, host):
            yield self._train_fn(images, labels, step_key(self.seed, epoch, step))

    def _eval_host(self, split, indices, mask):
        images, labels = self._decode(split, self._local(indices), None)
        return self._global(images), self._global(labels), self._global(self._local(mask))

    def eval_batches(self, split: str = "test") -> Iterator[dict]:
        """Yields {'image', 'label', 'mask'} covering every example of `split` once."""
        data = self.splits.split(split)
        plan = eval_plan(len(data), self.eval_batch(split))
        for images, labels, mask in _prefetch(
                functools.partial(self._eval_host, data, i, m) for i, m in plan):
            yield self._eval_fn(images, labels, mask)


def _prefetch(tasks, depth: int = PREFETCH):
    """Runs the callables of `tasks` in a background thread, `depth` ahead; yields results."""
    with concurrent.futures.ThreadPoolExecutor(1) as worker:
        pending = collections.deque()
        for task in tasks:
            pending.append(worker.submit(task))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _train_batch(images, labels, key, *, augment, mean, std):
    return {"image": augment_lib.train_transform(images, key, mean, std, augment),
            "label": labels}


def _eval_batch(images, labels, mask, *, mean, std):
    return {"image": augment_lib.eval_transform(images, mean, std), "label": labels,
            "mask": mask}
