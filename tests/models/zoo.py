"""Helpers of the model tests: parameter counts and FLOPs from `jax.eval_shape` (nothing is
allocated, so the large networks are checked too), and synthetic variables with a model's
structure (a compiled `init` costs more XLA time on CPU than the forward passes; the real
initialisation is checked once, on ResNet-8, in test_resnet_cifar.py).
"""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxkd import models

KEY = jax.random.key(0)


def param_shapes(model, size: int):
    images = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    return jax.eval_shape(functools.partial(model.init, train=False), KEY, images)["params"]


def count_params(name: str, num_classes: int, size: int = 32, **overrides) -> int:
    if "remat" in models.model_overrides(name):
        overrides.setdefault("remat", False)  # same parameters, cheaper to trace
    model = models.get_model(name, num_classes=num_classes, **overrides)
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(param_shapes(model, size)))


def flops_per_image(model, size: int) -> float:
    variables = jax.eval_shape(functools.partial(model.init, train=False), KEY,
                               jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))
    images = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    lowered = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, images)
    return lowered.cost_analysis()["flops"]


def synthetic_variables(model, images):
    """The model's variables (structure from `eval_shape` of `init`) filled from numpy.

    He fan-in normal kernels, zero biases and means, unit scales and variances: realistic
    enough for forward-pass checks, and free, whereas a compiled `init` costs seconds of XLA
    time per model on CPU (the real initialisation is tested once, on ResNet-8).
    """
    shapes = jax.eval_shape(functools.partial(model.init, train=False), KEY, images)
    rng = np.random.default_rng(0)

    def fill(path, leaf):
        name = path[-1].key
        if name == "kernel":
            std = math.sqrt(2.0 / math.prod(leaf.shape[:-1]))
            return jnp.asarray(rng.normal(0.0, std, leaf.shape), leaf.dtype)
        value = 1.0 if name in ("scale", "var") else 0.0
        return jnp.full(leaf.shape, value, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)
