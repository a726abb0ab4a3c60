"""ImageNet ResNets (He et al. 2016) in the torchvision layout (ResNet v1.5).

A 7x7 stride-2 convolution with 64 channels, BN, ReLU and a 3x3 stride-2 max pooling, then
four stages with 64, 128, 256 and 512 base channels at strides 4, 8, 16 and 32, global
average pooling and the classifier. ResNet-18/34 use basic blocks (two 3x3 convolutions);
ResNet-50/101/152 use bottleneck blocks (1x1, 3x3, 1x1 with 4x expansion) with the stride
on the 3x3 convolution ("v1.5", as torchvision; the paper puts it on the first 1x1).
Shortcuts are the identity, or a strided 1x1 convolution + BN where the shape changes
(option B of the paper). `zero_init_residual` starts the last BN of every block at scale 0
(Goyal et al. 2017); off by default, as in He et al.

`cifar_stem=True` replaces the stem by a 3x3 stride-1 convolution without max pooling, the
usual adaptation to 32x32 images (stages at 32, 16, 8 and 4 pixels); route-constrained
optimisation's ResNet-50 teacher on CIFAR-100 (2.6 GFLOPs in its Table 2) is this network.

References:
    He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016
    (Section 3.4, Table 1).
    Goyal et al. Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour. 2017
    (Section 5.1, zero-init of the last BN gamma).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxkd.models.common import Dtype, batch_norm, classifier_output, conv, spec
from jaxkd.models.resnet_cifar import BasicBlock

BASE_WIDTHS = (64, 128, 256, 512)


class Bottleneck(nn.Module):
    """Bottleneck block: 1x1 (`filters`), 3x3 (stride), 1x1 (`4 * filters`), + shortcut, ReLU.

    Attributes:
        filters: bottleneck width; the block outputs `4 * filters` channels.
        strides: stride of the 3x3 convolution (v1.5) and of the projection.
        zero_init_residual: start the last BN's scale at 0 so the block is the identity.
        dtype: computation dtype.
    """

    filters: int
    strides: int = 1
    zero_init_residual: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        out = 4 * self.filters
        y = conv(self.filters, 1, dtype=self.dtype)(x)
        y = nn.relu(batch_norm(train=train, dtype=self.dtype)(y))
        y = conv(self.filters, 3, self.strides, dtype=self.dtype)(y)
        y = nn.relu(batch_norm(train=train, dtype=self.dtype)(y))
        y = conv(out, 1, dtype=self.dtype)(y)
        y = batch_norm(train=train, dtype=self.dtype, zero_init=self.zero_init_residual)(y)
        residual = x
        if self.strides != 1 or x.shape[-1] != out:
            residual = conv(out, 1, self.strides, dtype=self.dtype, name="proj_conv")(x)
            residual = batch_norm(train=train, dtype=self.dtype, name="proj_bn")(residual)
        return nn.relu(y + residual)


class ImageNetResNet(nn.Module):
    """A four-stage ResNet (torchvision layout).

    Attributes:
        num_classes: number of logits.
        stage_sizes: blocks in each of the four stages.
        bottleneck: bottleneck blocks (ResNet-50 and deeper) instead of basic blocks.
        zero_init_residual: zero-init the last BN scale of every block.
        cifar_stem: 3x3 stride-1 stem without max pooling, for 32x32 inputs.
        dtype: computation dtype; parameters are float32, outputs float32.
    """

    num_classes: int
    stage_sizes: tuple[int, int, int, int]
    bottleneck: bool = False
    zero_init_residual: bool = False
    cifar_stem: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
        x = self._stem(x.astype(self.dtype), train)
        for stage, (blocks, width) in enumerate(zip(self.stage_sizes, BASE_WIDTHS)):
            for index in range(blocks):
                strides = 2 if stage > 0 and index == 0 else 1
                x = self._block(width, strides)(x, train)
        return classifier_output(x, num_classes=self.num_classes, dtype=self.dtype,
                                 return_features=return_features)

    def _stem(self, x: jax.Array, train: bool) -> jax.Array:
        if self.cifar_stem:
            x = conv(64, 3, dtype=self.dtype)(x)
            return nn.relu(batch_norm(train=train, dtype=self.dtype)(x))
        x = conv(64, 7, 2, dtype=self.dtype)(x)
        x = nn.relu(batch_norm(train=train, dtype=self.dtype)(x))
        return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))

    def _block(self, width: int, strides: int) -> nn.Module:
        if self.bottleneck:
            return Bottleneck(width, strides, zero_init_residual=self.zero_init_residual,
                              dtype=self.dtype)
        return BasicBlock(width, strides, shortcut="B",
                          zero_init_residual=self.zero_init_residual, dtype=self.dtype)


_OVERRIDES = {"zero_init_residual": False, "cifar_stem": False}

MODELS = {
    f"resnet{depth}": spec(ImageNetResNet, _OVERRIDES, stage_sizes=sizes, bottleneck=bottleneck,
                           input_size=224)
    for depth, sizes, bottleneck in ((18, (2, 2, 2, 2), False), (34, (3, 4, 6, 3), False),
                                     (50, (3, 4, 6, 3), True), (101, (3, 4, 23, 3), True),
                                     (152, (3, 8, 36, 3), True))
}
