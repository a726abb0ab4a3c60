"""The parity protocol's PyTorch side: jaxkd's training recipe, written in PyTorch.

What is the same as a jaxkd run of the same config (`experiments.parity.run`):
- data: the very arrays jaxkd trains on (`jaxkd.data.load_splits(config.data, seed)`: the
  same per-class subset for the same seed, the same mean/std normalisation);
- network: `benchmarks.torch_reference`'s CIFAR ResNet (option-A shortcuts, BatchNorm
  momentum 0.1 / eps 1e-5, He fan-out init; the architecture test in
  tests/test_benchmarks.py checks it against jaxkd's);
- augmentation: pad 4 zero pixels, random 32x32 crop, horizontal flip, then normalise;
- optimiser: SGD, momentum 0.9, Nesterov, L2 weight decay on every parameter added to the
  gradient (`torch.optim.SGD(weight_decay=...)`, as jaxkd's `decay_mask='all'`);
- schedule: per-step cosine from `base_lr` to 0 over the run (optax's
  `cosine_decay_schedule`, as `config.schedule.name='cosine'`);
- an epoch is `N // batch_size` steps of a fresh permutation (the last partial batch
  dropped); evaluation in eval mode on the whole test split;
- loss: cross-entropy, or Hinton KD `CE + T^2 KL(softmax(t/T) || softmax(s/T))` from a
  teacher in eval mode (`kd` with `ce_weight = kl_weight = 1`).
What differs: the random streams (PyTorch's generator for init, order and augmentation),
float summation order, and PyTorch's unbiased running variance (n/(n-1) on n = B*H*W).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np


def _augment(images, generator, padding: int = 4):
    """Pad-crop-flip of a uint8 NHWC batch (a torch tensor), per image."""
    import torch

    n, h, w, _ = images.shape
    padded = torch.nn.functional.pad(images, (0, 0, padding, padding, padding, padding))
    tops = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    lefts = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    rows = (tops[:, None] + torch.arange(h)[None])            # [n, h]
    cols = (lefts[:, None] + torch.arange(w)[None])           # [n, w]
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    idx = torch.arange(n)[:, None, None]
    return padded[idx, rows[:, :, None], cols[:, None, :]]


def _normalize(images, mean, std):
    import torch

    x = images.float() / 255.0
    x = (x - torch.as_tensor(mean, dtype=torch.float32)) / torch.as_tensor(std,
                                                                          dtype=torch.float32)
    return x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def kd_loss(student, teacher, labels, temperature: float):
    """Mean over the batch of CE + T^2 KL(softmax(t/T) || softmax(s/T))."""
    import torch.nn.functional as F

    ce = F.cross_entropy(student, labels)
    log_s = F.log_softmax(student / temperature, dim=-1)
    log_t = F.log_softmax(teacher / temperature, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1).mean()
    return ce + temperature ** 2 * kl


def evaluate(net, images: np.ndarray, labels: np.ndarray, mean, std,
             batch: int = 500) -> float:
    """Top-1 of `net` (eval mode) on uint8 NHWC `images`."""
    import torch

    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = _normalize(torch.from_numpy(images[i:i + batch]), mean, std)
            correct += int((net(x).argmax(-1) == torch.from_numpy(
                labels[i:i + batch]).long()).sum())
    return correct / len(images)


def train(config, seed: int, *, teacher=None, threads: int = 0) -> dict[str, Any]:
    """Trains `config.model` with `config`'s recipe in PyTorch; returns its test top-1.

    Args:
        config: a jaxkd config (`method` 'baseline' or 'kd'; schedule 'cosine').
        seed: the run's seed (data subset as jaxkd's seed; PyTorch's generator).
        teacher: a PyTorch network (eval mode) for `kd`.
        threads: torch intra-op threads (0: leave PyTorch's default).
    """
    import torch

    from benchmarks.torch_reference import build_torch_model
    from jaxkd import data

    if threads:
        torch.set_num_threads(threads)
    if config.schedule.name != "cosine":
        raise ValueError("the PyTorch side implements config.schedule.name='cosine' only")
    splits = data.load_splits(config.data, seed=seed)
    train_x, train_y = splits.train.images, splits.train.labels.astype(np.int64)
    mean, std = splits.mean, splits.std
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = build_torch_model(config.model, splits.num_classes).to(
        memory_format=torch.channels_last)
    opt = config.optimizer
    sgd = torch.optim.SGD(net.parameters(), lr=config.schedule.base_lr, momentum=opt.momentum,
                          nesterov=opt.nesterov, weight_decay=opt.weight_decay)
    bs, n = config.batch_size, len(train_x)
    spe = n // bs
    total = spe * config.num_epochs
    temperature = float(config.loss.get("temperature", 4.0))
    images_t, labels_t = torch.from_numpy(train_x), torch.from_numpy(train_y)
    t0, step, history = time.perf_counter(), 0, []
    for epoch in range(config.num_epochs):
        net.train()
        order = torch.randperm(n, generator=gen)
        for i in range(spe):
            rows = order[i * bs:(i + 1) * bs]
            x = _normalize(_augment(images_t[rows], gen), mean, std)
            y = labels_t[rows]
            for group in sgd.param_groups:   # optax's cosine at this step
                group["lr"] = config.schedule.base_lr * 0.5 * (1 + math.cos(
                    math.pi * min(step, total) / total))
            logits = net(x)
            if teacher is None:
                loss = torch.nn.functional.cross_entropy(logits, y)
            else:
                with torch.no_grad():
                    t_logits = teacher(x)
                loss = kd_loss(logits, t_logits, y, temperature)
            sgd.zero_grad(set_to_none=True)
            loss.backward()
            sgd.step()
            step += 1
        history.append({"epoch": epoch + 1, "loss": float(loss.detach())})
    wall = time.perf_counter() - t0
    test = splits.split("test")
    top1 = evaluate(net, test.images, test.labels, mean, std)
    return {"top1": top1, "wall_time": wall, "history": history, "seed": seed,
            "steps": step, "images_per_sec": step * bs / wall}
