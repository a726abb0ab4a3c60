"""Small builders shared by the end-to-end tests: a tiny learnable dataset and configs."""

import pathlib

import numpy as np

from jaxkd.config import default_config

NUM_CLASSES = 4


def write_tiny_npz(path: pathlib.Path, *, train=64, test=32, size=32, seed=0) -> pathlib.Path:
    """A 4-class dataset whose classes differ by colour, so a tiny net can learn it."""
    rng = np.random.default_rng(seed)
    colours = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]])

    def make(n):
        labels = np.arange(n) % NUM_CLASSES
        noise = rng.normal(0, 40, size=(n, size, size, 3))
        images = np.clip(colours[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
        return images, labels.astype(np.int64)

    x_train, y_train = make(train)
    x_test, y_test = make(test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def tiny_config(npz: pathlib.Path, method: str = "baseline", **changes):
    """A config that trains resnet8 for a few steps on the tiny dataset."""
    c = default_config()
    c.method = method
    c.model = "resnet8"
    c.data.source = "npz"
    c.data.path = str(npz)
    c.batch_size = 16
    c.eval_batch_size = 16
    c.num_epochs = 2
    c.schedule.name = "cosine"
    c.schedule.base_lr = 0.05
    c.schedule.boundaries = ()
    c.log_every_steps = 2
    c.progress_bar = False
    c.write_report = False
    return set_fields(c, **changes)


def set_fields(config, **changes):
    """`config` with dotted fields set: set_fields(c, **{"schedule.base_lr": 0.2})."""
    for key, value in changes.items():
        target = config
        *path, last = key.split(".")
        for part in path:
            target = target[part]
        target[last] = value
    return config


def crash_after(monkeypatch, n_steps: int) -> None:
    """Makes every train step after the first `n_steps` of the process raise
    KeyboardInterrupt, as a crash would stop it (checkpoints already written stay)."""
    from jaxkd.engine import loop

    real, calls = loop._compiled_steps, {"n": 0}

    def patched(*args, **kwargs):
        train, evaluate = real(*args, **kwargs)

        def crashing(*a, **k):
            calls["n"] += 1
            if calls["n"] > n_steps:
                raise KeyboardInterrupt("simulated crash")
            return train(*a, **k)
        return crashing, evaluate

    monkeypatch.setattr(loop, "_compiled_steps", patched)
