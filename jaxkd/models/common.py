"""Shared building blocks of the model zoo: initialisers, conv / BatchNorm partials, the head.

Every network in `jaxkd.models` is put together from these few pieces so that they agree on
the conventions the rest of the library relies on:

- convolutions have no bias, He (Kaiming) normal initialisation with fan-out as in torchvision
  and the original Torch code of He et al., and PyTorch's symmetric `kernel // 2` padding (not
  XLA's `SAME`, which pads strided convolutions asymmetrically), so a network here has the
  same output shapes and receptive fields as its PyTorch reference;
- BatchNorm with PyTorch's defaults (running averages with momentum 0.9 in Flax's convention,
  i.e. 0.1 in PyTorch's; epsilon 1e-5), scale 1 and bias 0, statistics in `batch_stats`;
- parameters are always float32, activations in the model's `dtype` (bfloat16 on
  accelerators), and the outputs (`logits`, `features`) are cast back to float32;
- the classifier is a Dense layer named `head` on the globally average-pooled penultimate
  activations, which are returned as `features` when asked for.

References:
    He, Zhang, Ren, Sun. Delving Deep into Rectifiers: Surpassing Human-Level Performance on
    ImageNet Classification. ICCV 2015 (the initialisation, Eqn 10).
    Ioffe, Szegedy. Batch Normalization. ICML 2015.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxkd.models import cpu_conv

Dtype = Any

#: He normal with fan-out (torchvision's `kaiming_normal_(mode='fan_out', nonlinearity='relu')`).
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

#: PyTorch's BatchNorm momentum 0.1 is Flax's 0.9 (Flax weights the running average).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

#: The convolution every `conv` layer traces (`benchmarks.conv_impl.use` swaps it).
conv_general_dilated: Callable = cpu_conv.conv_general_dilated


def conv(features: int, kernel: int, strides: int = 1, *, dtype: Dtype, groups: int = 1,
         name: str | None = None) -> nn.Conv:
    """A bias-free square convolution with PyTorch padding and He fan-out initialisation.

    Args:
        features: output channels.
        kernel: kernel size (square).
        strides: stride in both spatial dimensions.
        dtype: computation dtype; parameters stay float32.
        groups: `feature_group_count` (the channel count for a depthwise convolution).
        name: optional module name.

    Returns:
        An unbound `nn.Conv`.
    """
    pad = kernel // 2
    return nn.Conv(features, (kernel, kernel), strides=(strides, strides),
                   padding=((pad, pad), (pad, pad)), feature_group_count=groups,
                   use_bias=False, kernel_init=conv_init, dtype=dtype,
                   param_dtype=jnp.float32, name=name,
                   conv_general_dilated=conv_general_dilated)


def batch_norm(*, train: bool, dtype: Dtype, zero_init: bool = False,
               name: str | None = None) -> nn.BatchNorm:
    """BatchNorm with PyTorch's momentum and epsilon; batch statistics only when training.

    Args:
        train: normalise with the batch statistics and update the running averages.
        dtype: computation dtype (statistics are reduced in float32 regardless).
        zero_init: start with scale 0 instead of 1 (zero-init of the last BN of a residual
            branch, Goyal et al. 2017), so the block starts as the identity.
        name: optional module name.

    Returns:
        An unbound `nn.BatchNorm`.
    """
    scale_init = nn.initializers.zeros if zero_init else nn.initializers.ones
    return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                        epsilon=BN_EPSILON, dtype=dtype, param_dtype=jnp.float32,
                        scale_init=scale_init, name=name)


def classifier_output(x: jax.Array, *, num_classes: int, dtype: Dtype, return_features: bool,
                      kernel_init: Callable = nn.linear.default_kernel_init,
                      dropout_rate: float = 0.0, train: bool = False,
                      ) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Global average pooling, the `head` Dense layer and the float32 outputs.

    Must be called inside a compact `__call__` (the Dense layer is named `head` there).

    Args:
        x: the penultimate activations `[B, H, W, D]` (after the last non-linearity).
        num_classes: number of logits.
        dtype: computation dtype of the head.
        return_features: also return the pooled activations.
        kernel_init: initialiser of the head's kernel; its bias starts at 0.
        dropout_rate: dropout on the pooled activations before the head, while training
            ('dropout' rng); the returned features are taken before it.
        train: whether dropout is active.

    Returns:
        float32 logits `[B, num_classes]`, or `(logits, features)` with float32 features
        `[B, D]` (the exact input of the head when not training).
    """
    if jax.default_backend() == "cpu" and x.dtype != jnp.float32:
        # XLA:CPU of jax 0.12 fuses the last block and this pooling into one YNNPACK
        # fusion that returns NaN in bfloat16 (tests/models/test_common.py); the
        # barrier keeps them apart. Accelerators and float32 compile as before.
        x = jax.lax.optimization_barrier(x)
    features = jnp.mean(x, axis=(1, 2))
    head_input = features
    if dropout_rate > 0:
        head_input = nn.Dropout(dropout_rate, deterministic=not train)(features)
    logits = nn.Dense(num_classes, kernel_init=kernel_init, dtype=dtype,
                      param_dtype=jnp.float32, name="head")(head_input)
    logits = logits.astype(jnp.float32)
    if return_features:
        return logits, features.astype(jnp.float32)
    return logits


class ModelSpec(NamedTuple):
    """How the registry builds one named model.

    Attributes:
        cls: the Flax module class.
        kwargs: fixed constructor arguments that define the named architecture.
        overrides: the constructor arguments a caller may override, with their defaults.
        validate: optional check of the final keyword arguments; raises `ValueError`.
        input_size: the image side the architecture was designed for (32 CIFAR, 224 ImageNet).
    """

    cls: type[nn.Module]
    kwargs: Mapping[str, Any]
    overrides: Mapping[str, Any] = {}
    validate: Callable[[dict[str, Any]], None] | None = None
    input_size: int = 32


def spec(cls: type[nn.Module], overrides: Mapping[str, Any] | None = None,
         validate: Callable[[dict[str, Any]], None] | None = None, *, input_size: int = 32,
         **kwargs: Any) -> ModelSpec:
    """Shorthand for a `ModelSpec`: fixed architecture arguments as keywords."""
    return ModelSpec(cls, dict(kwargs), dict(overrides or {}), validate, input_size)

