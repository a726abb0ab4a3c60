"""Model zoo: the image classifiers of the four papers, built by name.

Usage::

    model = get_model('resnet56', num_classes=100, dtype=jnp.bfloat16)
    variables = model.init(rng, images, train=False)
    logits, state = model.apply(variables, images, train=True, mutable=['batch_stats'],
                                rngs={'dropout': key})
    logits, features = model.apply(variables, images, train=False, return_features=True)

Every model takes float NHWC images (already normalised), keeps its BatchNorm statistics in
the `batch_stats` collection, returns float32 logits `[B, num_classes]` (and, when asked,
the float32 globally pooled penultimate activations `[B, D]` that the `head` Dense layer
maps to the logits). `lstm_lm` and `cnn_lstm_lm` ([BAN] Table 6) are the language models:
int32 tokens [B, T] in, logits [B, T, vocabulary] out (`jaxkd.models.lstm`,
`jaxkd.models.char_cnn_lstm`). See docs/models.md for the table
of names, sizes and FLOPs.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxkd.models import (char_cnn_lstm, densenet, lstm, mobilenet_v2, resnet_cifar,
                          resnet_imagenet, route_pair, wide_resnet)
from jaxkd.models.common import ModelSpec
from jaxkd.validation import require_int

_REGISTRY: dict[str, ModelSpec] = {}
for _family in (resnet_cifar, densenet, wide_resnet, mobilenet_v2, resnet_imagenet, lstm,
                char_cnn_lstm):
    _REGISTRY.update(_family.MODELS)


def _route_pair_spec() -> ModelSpec:
    """`route_pair`: a teacher and a student of the zoo trained together ([RCO] RL)."""
    return ModelSpec(route_pair.RoutePair, dict(build=get_model),
                     dict(teacher_model="resnet20", student_model="resnet8",
                          teacher_overrides=(), student_overrides=()),
                     route_pair.validate, 32)


def list_models() -> list[str]:
    """Names accepted by `get_model`, sorted."""
    return sorted([*_REGISTRY, "route_pair"])


def model_overrides(name: str) -> dict[str, Any]:
    """The keyword overrides `get_model` accepts for `name`, with their defaults."""
    return dict(_lookup(name).overrides)


def input_size(name: str) -> int:
    """The image side `name` was designed for: 32 (CIFAR) or 224 (ImageNet)."""
    return _lookup(name).input_size


def get_model(name: str, *, num_classes: int, dtype: Any = jnp.float32,
              **overrides: Any) -> nn.Module:
    """Builds the named classifier.

    Args:
        name: one of `list_models()`, e.g. 'resnet56', 'densenet_bc_190_40', 'wrn_28_10',
            'mobilenetv2_cifar', 'resnet50'.
        num_classes: number of logits.
        dtype: activation dtype (`jnp.bfloat16` on accelerators); parameters stay float32
            and the logits are float32 regardless.
        **overrides: architecture options of the model's family, see `model_overrides`
            (e.g. `dropout_rate` for Wide ResNets, `width` and `expansion` for MobileNetV2,
            `remat` for DenseNets, `zero_init_residual` for post-activation ResNets).

    Returns:
        An unbound Flax Linen module.

    Raises:
        ValueError: unknown name (the message lists the known ones), unknown override (the
            message names it and the accepted ones) or an invalid override value.
    """
    model_spec = _lookup(name)
    unknown = sorted(set(overrides) - set(model_spec.overrides))
    if unknown:
        raise ValueError(f"model {name!r} does not accept override(s) {unknown}; "
                         f"accepted: {sorted(model_spec.overrides)}")
    require_int(num_classes, "num_classes", low=1)
    kwargs = {**model_spec.overrides, **overrides}
    if model_spec.validate is not None:
        model_spec.validate(kwargs)
    return model_spec.cls(num_classes=num_classes, dtype=dtype, **model_spec.kwargs, **kwargs)


def _lookup(name: str) -> ModelSpec:
    if name == "route_pair":
        return _route_pair_spec()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: "
                         f"{', '.join(list_models())}") from None


__all__ = ["get_model", "input_size", "list_models", "model_overrides"]
