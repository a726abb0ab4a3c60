"""MobileNetV2 (Sandler et al. 2018) for ImageNet and for 32x32 CIFAR images.

Inverted residual blocks: a 1x1 expansion to `t` times the input channels (skipped when
t = 1), a 3x3 depthwise convolution carrying the stride, and a linear 1x1 projection, with
BN after each convolution and ReLU6 after the first two; the input is added back when the
block keeps the shape. The ImageNet network (torchvision layout) is a stride-2 3x3 stem with
32 channels, the seven stages (t, c, n, s) of Table 2 of the paper, a 1x1 convolution to
1280 channels, global average pooling and the classifier: 3.5M parameters at width 1.0.

`width` multiplies every channel count, rounded to a multiple of 8 as in the reference
(`_make_divisible`; the last 1280 only grows, never shrinks), or truncated to an integer
with `round_channels=False`; `expansion` replaces the factor t = 6 of all blocks but the
first (t = 1), as route-constrained optimisation (RCO) varies it in 4..10.

CIFAR variant (`mobilenetv2_cifar`). The ImageNet layout downsamples 32x32 images to 1x1.
We follow the RCO paper, whose students this variant is for: its Table 3 (MFLOPs of 16
width/expansion settings on CIFAR-100) is reproduced to within 2.5% by the ImageNet layout
with only the first strided stage (c = 24) at stride 1 - the stem keeps stride 2, so the maps
are 16x16 up to c = 24, 8x8 for c = 32, 4x4 for c = 64 and 96, 2x2 from c = 160 on (total
stride 16) - and channels truncated (`round_channels=False`); with the reference rounding to 8
(our default, as in Sandler et al.) the small widths cost 10-20% more FLOPs. The other common
CIFAR layout, the stem at stride 1 as well (total stride 8, 4x the FLOPs), is
`strides=CIFAR_STRIDE8`. docs/models.md has the comparison.
`dropout_rate` (default 0.0; torchvision uses 0.2 on ImageNet) applies before the classifier.

References:
    Sandler, Howard, Zhu, Zhmoginov, Chen. MobileNetV2: Inverted Residuals and Linear
    Bottlenecks. CVPR 2018 (Section 4, Table 2).
    Jin, Peng, Wu, Liu, Yan, Hu, Wang, Zhang. Knowledge Distillation via Route Constrained
    Optimization. ICCV 2019 (Section 4.1, Table 3).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxkd.models.common import Dtype, batch_norm, classifier_output, conv, spec
from jaxkd.validation import fail, require_number

#: Table 2 of Sandler et al.: (expansion t, channels c, repeats n, stride s) per stage.
#: The expansion of every stage but the first is the `expansion` attribute (6 by default).
STAGES = ((1, 16, 1, 1), (None, 24, 2, 2), (None, 32, 3, 2), (None, 64, 4, 2),
          (None, 96, 3, 1), (None, 160, 3, 2), (None, 320, 1, 1))
IMAGENET_STRIDES = (2, 1, 2, 2, 2, 1, 2, 1)  # stem, then the seven stages
CIFAR_STRIDES = (2, 1, 1, 2, 2, 1, 2, 1)  # RCO's layout: total stride 16
CIFAR_STRIDE8 = (1, 1, 1, 2, 2, 1, 2, 1)  # stem at stride 1 too: total stride 8
STEM_CHANNELS, LAST_CHANNELS = 32, 1280


def make_divisible(value: float, divisor: int = 8) -> int:
    """Rounds `value` to the nearest multiple of `divisor`, never going below 90% of it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def scale_channels(channels: int, width: float, round_channels: bool = True) -> int:
    """`channels * width`, rounded to a multiple of 8 (reference) or truncated (RCO)."""
    if round_channels:
        return make_divisible(channels * width)
    return max(1, int(channels * width))


def _conv_bn(x: jax.Array, features: int, kernel: int, strides: int, *, train: bool,
             dtype: Dtype, groups: int = 1, relu6: bool = True) -> jax.Array:
    x = conv(features, kernel, strides, groups=groups, dtype=dtype)(x)
    x = batch_norm(train=train, dtype=dtype)(x)
    return jnp.clip(x, 0.0, 6.0) if relu6 else x


class InvertedResidual(nn.Module):
    """Expand (1x1) - depthwise 3x3 (stride) - linear project (1x1), residual if same shape.

    Attributes:
        features: output channels.
        strides: stride of the depthwise convolution.
        expansion: hidden channels = round(input channels * expansion).
        dtype: computation dtype.
    """

    features: int
    strides: int
    expansion: float
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        hidden = int(round(x.shape[-1] * self.expansion))
        y = x
        if self.expansion != 1:
            y = _conv_bn(y, hidden, 1, 1, train=train, dtype=self.dtype)
        y = _conv_bn(y, hidden, 3, self.strides, groups=hidden, train=train, dtype=self.dtype)
        y = _conv_bn(y, self.features, 1, 1, relu6=False, train=train, dtype=self.dtype)
        if self.strides == 1 and x.shape[-1] == self.features:
            y = y + x
        return y


class MobileNetV2(nn.Module):
    """MobileNetV2 with a width multiplier and a configurable expansion factor.

    Attributes:
        num_classes: number of logits.
        width: width multiplier (0.35 .. 1.4 in the papers).
        expansion: expansion factor t of all stages but the first.
        strides: stride of the stem, then of the first block of each of the seven stages.
        round_channels: round scaled channels to multiples of 8, else truncate them.
        dropout_rate: dropout before the classifier ('dropout' rng while training).
        dtype: computation dtype; parameters are float32, outputs float32.
    """

    num_classes: int
    width: float = 1.0
    expansion: float = 6
    strides: tuple[int, ...] = IMAGENET_STRIDES
    round_channels: bool = True
    dropout_rate: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
        x = _conv_bn(x.astype(self.dtype), self._channels(STEM_CHANNELS), 3,
                     self.strides[0], train=train, dtype=self.dtype)
        for (t, channels, repeats, _), stride in zip(STAGES, self.strides[1:]):
            for index in range(repeats):
                x = InvertedResidual(self._channels(channels), stride if index == 0 else 1,
                                     self.expansion if t is None else t,
                                     dtype=self.dtype)(x, train)
        last = scale_channels(LAST_CHANNELS, max(1.0, self.width), self.round_channels)
        x = _conv_bn(x, last, 1, 1, train=train, dtype=self.dtype)
        return classifier_output(x, num_classes=self.num_classes, dtype=self.dtype,
                                 return_features=return_features,
                                 kernel_init=nn.initializers.normal(0.01),
                                 dropout_rate=self.dropout_rate, train=train)

    def _channels(self, channels: int) -> int:
        return scale_channels(channels, self.width, self.round_channels)


def _validate(kwargs: dict[str, Any]) -> None:
    require_number(kwargs["dropout_rate"], "model override dropout_rate", low=0, high=1,
                   high_open=True)
    require_number(kwargs["width"], "model override width", low=0, low_open=True)
    require_number(kwargs["expansion"], "model override expansion", low=1)
    strides = tuple(kwargs["strides"])
    if len(strides) != 1 + len(STAGES) or not set(strides) <= {1, 2}:
        fail("model override strides", f"must be {1 + len(STAGES)} values in (1, 2) (stem, "
             "then the stages)", kwargs["strides"])
    kwargs["strides"] = strides


def _overrides(strides: tuple[int, ...]) -> dict[str, Any]:
    return {"width": 1.0, "expansion": 6, "dropout_rate": 0.0, "round_channels": True,
            "strides": strides}


MODELS = {
    "mobilenetv2": spec(MobileNetV2, _overrides(IMAGENET_STRIDES), _validate, input_size=224),
    "mobilenetv2_cifar": spec(MobileNetV2, _overrides(CIFAR_STRIDES), _validate),
}
