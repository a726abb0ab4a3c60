"""DenseNets for 32x32 images (Huang et al. 2017), including the born-again DenseNets.

Layout of Huang et al. for CIFAR: a 3x3 convolution (2k channels for DenseNet-BC, 16
otherwise), three dense blocks at 32x32, 16x16 and 8x8 separated by transition layers
(BN-ReLU-1x1 conv to `floor(compression * channels)` - 2x2 average pooling), and a final
BN-ReLU, global average pooling and the classifier. A dense layer is BN-ReLU-1x1 conv (4k
channels, the bottleneck "B") - BN-ReLU-3x3 conv (k channels) on the concatenation of all
earlier feature maps of its block; DenseNet-BC also halves the channels in the transitions
("C", compression 0.5). A depth L gives `(L - 4) // 6` bottleneck layers per block (integer
division, as in the reference implementations), so DenseNet-BC-100-12 has 16 and
DenseNet-BC-190-40 has 31.

Born-again networks name their DenseNets depth-growth (112-33, 90-60, 80-80, 80-120) and use
the same DenseNet-BC recipe (the paper calls its largest one "DenseNet-BC-80-120", and its
DenseNet-14-0.5-1 / 7-1-2 students of the 90-60 teacher show 14 layers per block, i.e.
`(90 - 4) // 6`). docs/models.md compares our parameter counts with the paper's.

Memory. The concatenations make the activations saved for the backward pass grow
quadratically with the number of layers per block. With `remat=True` the concatenation,
BN-ReLU and 1x1 convolution of every dense layer are recomputed in the backward pass
(`nn.remat`), so only the k-channel outputs of the layers are stored: the memory-efficient
DenseNet of Pleiss et al. It is on by default for DenseNet-BC-190-40 and never changes the
parameters or the outputs.

References:
    Huang, Liu, van der Maaten, Weinberger. Densely Connected Convolutional Networks.
    CVPR 2017 (Section 3, Table 2).
    Furlanello, Lipton, Tschannen, Itti, Anandkumar. Born-Again Neural Networks. ICML 2018
    (Tables 1, 2 and 4).
    Pleiss, Chen, Huang, Li, van der Maaten, Weinberger. Memory-Efficient Implementation of
    DenseNets. arXiv:1707.06990, 2017.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxkd.models.common import Dtype, ModelSpec, batch_norm, classifier_output, conv, spec
from jaxkd.validation import require_bool, require_int, require_number

#: Width of the bottleneck 1x1 convolution in units of the growth rate.
BOTTLENECK_WIDTH = 4


class _PreActivation(nn.Module):
    """Concatenation -> BN -> ReLU (-> 1x1 conv): the part of a dense layer worth remat-ing.

    `train` is an attribute (static under `nn.remat`), not a call argument.
    """

    features: int | None
    train: bool
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, inputs: Sequence[jax.Array]) -> jax.Array:
        x = jnp.concatenate(list(inputs), axis=-1)
        x = nn.relu(batch_norm(train=self.train, dtype=self.dtype)(x))
        if self.features is not None:
            x = conv(self.features, 1, dtype=self.dtype)(x)
        return x


_RematPreActivation = nn.remat(_PreActivation)


class DenseLayer(nn.Module):
    """One dense layer: `k` new feature maps from all earlier ones of the block.

    Attributes:
        growth_rate: k, the channels the layer adds.
        bottleneck: BN-ReLU-1x1 conv to 4k channels before the BN-ReLU-3x3 conv.
        remat: recompute the concatenation and bottleneck in the backward pass.
        dtype: computation dtype.
    """

    growth_rate: int
    bottleneck: bool = True
    remat: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, inputs: Sequence[jax.Array], train: bool) -> jax.Array:
        pre_cls = _RematPreActivation if self.remat else _PreActivation
        width = BOTTLENECK_WIDTH * self.growth_rate if self.bottleneck else None
        x = pre_cls(width, train=train, dtype=self.dtype, name="bottleneck")(tuple(inputs))
        if self.bottleneck:
            x = nn.relu(batch_norm(train=train, dtype=self.dtype)(x))
        return conv(self.growth_rate, 3, dtype=self.dtype)(x)


def transition(x: jax.Array, *, compression: float, train: bool, dtype: Dtype) -> jax.Array:
    """BN-ReLU-1x1 conv to `floor(compression * C)` channels, then 2x2 average pooling."""
    x = nn.relu(batch_norm(train=train, dtype=dtype)(x))
    x = conv(int(math.floor(compression * x.shape[-1])), 1, dtype=dtype)(x)
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


class DenseNet(nn.Module):
    """A three-block DenseNet for 32x32 images.

    Attributes:
        num_classes: number of logits.
        layers_per_block: dense layers in each of the three blocks.
        growth_rate: k.
        bottleneck: use bottleneck layers (the "B" of DenseNet-BC).
        compression: channel factor of the transitions (0.5 for "C", 1.0 for none).
        stem_features: channels of the first convolution; 0 is Huang et al.'s choice (2k
            for DenseNet-BC, 16 otherwise). [BAN] Table 4's students keep their teacher's
            stem so that every block's output width matches the teacher's.
        remat: rematerialise the bottleneck of every dense layer (saves memory, costs about
            one extra 1x1 convolution per layer in the backward pass).
        dtype: computation dtype; parameters are float32, outputs float32.
    """

    num_classes: int
    layers_per_block: int
    growth_rate: int
    bottleneck: bool = True
    compression: float = 0.5
    stem_features: int = 0
    remat: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
        is_bc = self.bottleneck or self.compression < 1.0
        stem = self.stem_features or (2 * self.growth_rate if is_bc else 16)
        x = conv(stem, 3, dtype=self.dtype)(x.astype(self.dtype))
        for block in range(3):
            x = self._dense_block(x, train)
            if block < 2:
                x = transition(x, compression=self.compression, train=train, dtype=self.dtype)
        x = nn.relu(batch_norm(train=train, dtype=self.dtype)(x))
        return classifier_output(x, num_classes=self.num_classes, dtype=self.dtype,
                                 return_features=return_features)

    def _dense_block(self, x: jax.Array, train: bool) -> jax.Array:
        features = [x]
        for _ in range(self.layers_per_block):
            layer = DenseLayer(self.growth_rate, bottleneck=self.bottleneck, remat=self.remat,
                               dtype=self.dtype)
            features.append(layer(features, train))
        return jnp.concatenate(features, axis=-1)


def _check_architecture(kwargs: dict) -> None:
    """Validates the architecture overrides (errors name the override)."""
    for name, low in (("layers_per_block", 1), ("growth_rate", 1), ("stem_features", 0)):
        require_int(kwargs[name], f"model override {name}", low=low)
    require_number(kwargs["compression"], "model override compression", low=0, high=1,
                   low_open=True)
    require_bool(kwargs["bottleneck"], "model override bottleneck")


def _densenet_bc(depth: int, growth_rate: int, remat: bool = False) -> ModelSpec:
    """DenseNet-BC-`depth`-`growth_rate`: (depth - 4) // 6 bottleneck layers per block.

    The architecture is the defaults of its overrides, so `model_overrides` can derive a
    variant from a named network: [BAN] Table 4's students of DenseNet-90-60, e.g. its
    2*Depth row is `densenet_90_60` with layers_per_block=28, growth_rate=30,
    stem_features=120.
    """
    return spec(DenseNet, {"layers_per_block": (depth - 4) // 6, "growth_rate": growth_rate,
                           "bottleneck": True, "compression": 0.5, "stem_features": 0,
                           "remat": remat}, _check_architecture)


MODELS = {
    # Small DenseNet-BC for tests and CPU runs.
    "densenet_bc_16_8": _densenet_bc(16, 8),
    "densenet_bc_40_12": _densenet_bc(40, 12),
    "densenet_bc_100_12": _densenet_bc(100, 12),
    "densenet_bc_190_40": _densenet_bc(190, 40, remat=True),
    # Born-again networks (Furlanello et al. 2018), depth-growth, DenseNet-BC.
    "densenet_112_33": _densenet_bc(112, 33),
    "densenet_90_60": _densenet_bc(90, 60),
    "densenet_80_80": _densenet_bc(80, 80),
    "densenet_80_120": _densenet_bc(80, 120),
}
