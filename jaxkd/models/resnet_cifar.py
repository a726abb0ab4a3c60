"""CIFAR ResNets (He et al. 2016a) and pre-activation ResNets (He et al. 2016b).

The CIFAR layout of He et al. (Section 4.2): a 3x3 convolution with 16 channels on the 32x32
image, then three stages of `n` residual blocks with 16, 32 and 64 channels at 32x32, 16x16
and 8x8 (the first block of stages 2 and 3 has stride 2), global average pooling and the
classifier; `6n + 2` weighted layers, so ResNet-20/32/44/56/110 have n = 3/5/7/9/18.
When a block changes the shape, the shortcut is option A of the paper: the identity,
subsampled by the stride and zero-padded to the new width, with no parameters, which is what
gives the paper's 0.27M / 0.46M / 0.66M / 0.85M / 1.7M parameters.

The pre-activation variants move BatchNorm and ReLU in front of each convolution
(BN-ReLU-conv-BN-ReLU-conv, added to an untouched identity) and add a final BN-ReLU before
pooling. Basic-block pre-act ResNets keep option A shortcuts (so they have the same parameter
count as the originals); the bottleneck ResNet-164 (`9n + 2` layers, n = 18, expansion 4)
uses 1x1 projection shortcuts on the pre-activated input as in the authors' code.
`CifarResNet` also carries the Wide ResNets (see `wide_resnet.py`): pre-act blocks with wider
stages, projection shortcuts and dropout between the two convolutions.

References:
    He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 (Section 4.2,
    Table 6).
    He, Zhang, Ren, Sun. Identity Mappings in Deep Residual Networks. ECCV 2016 (Fig. 4(e),
    Table 3).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxkd.models.common import Dtype, batch_norm, classifier_output, conv, spec
from jaxkd.validation import require_choice

_SHORTCUTS = ("A", "B")


def zero_pad_identity(x: jax.Array, filters: int, strides: int) -> jax.Array:
    """Option-A shortcut: subsample by `strides` and zero-pad the channels to `filters`.

    The extra channels are split between both ends, as in the common PyTorch port.
    """
    if strides > 1:
        x = x[:, ::strides, ::strides, :]
    extra = filters - x.shape[-1]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))


def _needs_projection(x: jax.Array, filters: int, strides: int) -> bool:
    return strides != 1 or x.shape[-1] != filters


class BasicBlock(nn.Module):
    """Post-activation basic block: `relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))`.

    Attributes:
        filters: output channels of both 3x3 convolutions.
        strides: stride of the first convolution (and of the shortcut).
        shortcut: 'A' (parameter-free zero-padded identity) or 'B' (1x1 conv + BN) when the
            shape changes; the identity otherwise.
        zero_init_residual: start the last BN's scale at 0 so the block is the identity.
        dtype: computation dtype.
    """

    filters: int
    strides: int = 1
    shortcut: str = "A"
    zero_init_residual: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        y = conv(self.filters, 3, self.strides, dtype=self.dtype)(x)
        y = nn.relu(batch_norm(train=train, dtype=self.dtype)(y))
        y = conv(self.filters, 3, dtype=self.dtype)(y)
        y = batch_norm(train=train, dtype=self.dtype, zero_init=self.zero_init_residual)(y)
        return nn.relu(y + self._shortcut(x, train))

    def _shortcut(self, x: jax.Array, train: bool) -> jax.Array:
        if not _needs_projection(x, self.filters, self.strides):
            return x
        if self.shortcut == "A":
            return zero_pad_identity(x, self.filters, self.strides)
        y = conv(self.filters, 1, self.strides, dtype=self.dtype, name="proj_conv")(x)
        return batch_norm(train=train, dtype=self.dtype, name="proj_bn")(y)


def preact_shortcut(x: jax.Array, pre: jax.Array, *, filters: int, strides: int, kind: str,
                    dtype: Dtype) -> jax.Array:
    """Shortcut of a pre-activation block.

    The identity when the shape is kept; otherwise option A on the raw input `x`, or a 1x1
    convolution of the pre-activated input `pre` (kind 'B', He et al. 2016b and the WRN code).
    """
    if not _needs_projection(x, filters, strides):
        return x
    if kind == "A":
        return zero_pad_identity(x, filters, strides)
    return conv(filters, 1, strides, dtype=dtype, name="proj_conv")(pre)


class PreActBlock(nn.Module):
    """Pre-activation basic block `conv(drop(relu(bn(conv(relu(bn(x))))))) + shortcut`.

    Attributes:
        filters: output channels of both 3x3 convolutions.
        strides: stride of the first convolution.
        shortcut: 'A' or 'B', see `preact_shortcut`.
        dropout_rate: dropout between the two convolutions (Wide ResNets); uses the
            'dropout' rng when training.
        dtype: computation dtype.
    """

    filters: int
    strides: int = 1
    shortcut: str = "A"
    dropout_rate: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        pre = nn.relu(batch_norm(train=train, dtype=self.dtype)(x))
        residual = preact_shortcut(x, pre, filters=self.filters, strides=self.strides,
                                   kind=self.shortcut, dtype=self.dtype)
        y = conv(self.filters, 3, self.strides, dtype=self.dtype)(pre)
        y = nn.relu(batch_norm(train=train, dtype=self.dtype)(y))
        if self.dropout_rate > 0:
            y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
        y = conv(self.filters, 3, dtype=self.dtype)(y)
        return y + residual


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck: 1x1 (`filters`), 3x3 (stride), 1x1 (`4 * filters`).

    Attributes:
        filters: bottleneck width; the block outputs `4 * filters` channels.
        strides: stride of the 3x3 convolution.
        shortcut: 'A' or 'B', see `preact_shortcut` (ResNet-164 uses 'B').
        dtype: computation dtype.
    """

    filters: int
    strides: int = 1
    shortcut: str = "B"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        out = 4 * self.filters
        pre = nn.relu(batch_norm(train=train, dtype=self.dtype)(x))
        residual = preact_shortcut(x, pre, filters=out, strides=self.strides,
                                   kind=self.shortcut, dtype=self.dtype)
        y = conv(self.filters, 1, dtype=self.dtype)(pre)
        y = nn.relu(batch_norm(train=train, dtype=self.dtype)(y))
        y = conv(self.filters, 3, self.strides, dtype=self.dtype)(y)
        y = nn.relu(batch_norm(train=train, dtype=self.dtype)(y))
        return conv(out, 1, dtype=self.dtype)(y) + residual


class CifarResNet(nn.Module):
    """A three-stage ResNet for 32x32 images (CIFAR ResNets, pre-act ResNets, Wide ResNets).

    Attributes:
        num_classes: number of logits.
        blocks_per_stage: residual blocks in each of the three stages.
        block: 'basic' (post-activation), 'preact' or 'preact_bottleneck'.
        widths: channels of the three stages (bottleneck width for 'preact_bottleneck').
        shortcut: 'A' (zero-padded identity) or 'B' (1x1 projection) on shape changes.
        zero_init_residual: zero-init the last BN scale of each 'basic' block.
        dropout_rate: dropout inside 'preact' blocks (Wide ResNets).
        stem_width: channels of the first 3x3 convolution.
        dtype: computation dtype; parameters are float32, outputs float32.
    """

    num_classes: int
    blocks_per_stage: int
    block: str = "basic"
    widths: tuple[int, int, int] = (16, 32, 64)
    shortcut: str = "A"
    zero_init_residual: bool = False
    dropout_rate: float = 0.0
    stem_width: int = 16
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
        preact = self.block != "basic"
        x = conv(self.stem_width, 3, dtype=self.dtype)(x.astype(self.dtype))
        if not preact:
            x = nn.relu(batch_norm(train=train, dtype=self.dtype)(x))
        for stage, width in enumerate(self.widths):
            for index in range(self.blocks_per_stage):
                strides = 2 if stage > 0 and index == 0 else 1
                x = self._block(width, strides)(x, train)
        if preact:
            x = nn.relu(batch_norm(train=train, dtype=self.dtype)(x))
        return classifier_output(x, num_classes=self.num_classes, dtype=self.dtype,
                                 return_features=return_features)

    def _block(self, filters: int, strides: int) -> nn.Module:
        require_choice(self.shortcut, "shortcut", _SHORTCUTS)
        common = dict(filters=filters, strides=strides, shortcut=self.shortcut, dtype=self.dtype)
        if self.block == "basic":
            return BasicBlock(zero_init_residual=self.zero_init_residual, **common)
        if self.block == "preact":
            return PreActBlock(dropout_rate=self.dropout_rate, **common)
        if self.block == "preact_bottleneck":
            return PreActBottleneck(**common)
        raise ValueError(f"unknown block {self.block!r}")


MODELS = {
    **{f"resnet{depth}": spec(CifarResNet, {"zero_init_residual": False},
                              blocks_per_stage=(depth - 2) // 6, block="basic")
       for depth in (8, 14, 20, 32, 44, 56, 110)},
    **{f"preact_resnet{depth}": spec(CifarResNet, blocks_per_stage=(depth - 2) // 6,
                                     block="preact")
       for depth in (20, 32, 44, 56, 110)},
    "preact_resnet164": spec(CifarResNet, blocks_per_stage=18, block="preact_bottleneck",
                             shortcut="B"),
}
