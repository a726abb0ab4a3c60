"""Wide Residual Networks WRN-d-k for 32x32 images (Zagoruyko & Komodakis 2016).

WRN-d-k is a pre-activation ResNet (`CifarResNet` with 'preact' blocks) whose three stages
have `16k`, `32k` and `64k` channels and `(d - 4) / 6` basic blocks each, after a 3x3 stem
with 16 channels. Where a block changes the width or the resolution, the shortcut is a 1x1
convolution of the pre-activated input (the BN-ReLU in front of the block is shared by both
branches, as in the authors' code); dropout, when enabled (`dropout_rate`, 0.3 in the paper's
"dropout" rows, 0 by default here and in born-again networks), sits between the two 3x3
convolutions of each block and draws from the 'dropout' rng while training.

WRN-28-10 has 36.5M parameters, WRN-28-1/2/5 0.37M/1.47M/9.13M with a 10-class head
(born-again networks, Table 1: 0.38M, 1.48M, 9.16M, 36M).

References:
    Zagoruyko, Komodakis. Wide Residual Networks. BMVC 2016 (Section 2, Tables 1 and 4).
    Furlanello, Lipton, Tschannen, Itti, Anandkumar. Born-Again Neural Networks. ICML 2018
    (Tables 1 and 3: WRN-28-1, 28-2, 28-5, 28-10).
"""
from __future__ import annotations

from typing import Any

from jaxkd.models.common import ModelSpec, spec
from jaxkd.models.resnet_cifar import CifarResNet
from jaxkd.validation import require_number


def _validate(kwargs: dict[str, Any]) -> None:
    require_number(kwargs["dropout_rate"], "model override dropout_rate", low=0, high=1,
                   high_open=True)


def wide_resnet(depth: int, widen_factor: int) -> ModelSpec:
    """The registry entry of WRN-`depth`-`widen_factor`.

    Args:
        depth: `6n + 4` for n blocks per stage (the paper's convention).
        widen_factor: k, the width multiplier of the stages.

    Returns:
        A `ModelSpec` for `CifarResNet` with overridable `dropout_rate` (default 0.0).
    """
    if (depth - 4) % 6:
        raise ValueError(f"WRN depth must be 6n + 4, got {depth}")
    widths = tuple(base * widen_factor for base in (16, 32, 64))
    return spec(CifarResNet, {"dropout_rate": 0.0}, _validate,
                blocks_per_stage=(depth - 4) // 6, block="preact", widths=widths,
                shortcut="B")


MODELS = {
    f"wrn_{depth}_{k}": wide_resnet(depth, k)
    for depth, k in ((10, 1), (16, 1), (16, 2), (28, 1), (28, 2), (28, 5), (28, 10))
}
