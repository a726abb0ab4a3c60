"""Markdown tables of the model zoo: parameters and FLOPs per image of every registered model.

Command (the tables of docs/models.md come from it; a few minutes on a CPU, nothing is
allocated or compiled, every model is only traced and lowered):

    JAX_PLATFORMS=cpu python benchmarks/model_table.py --rco

Parameters: CIFAR models with a 100-class head, ImageNet models with 1000 classes.
FLOPs: XLA's own count for one inference forward pass at the model's native input size (32x32
or 224x224), `jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(v, x)
.cost_analysis()['flops'] / batch`. XLA counts a multiply-add as 2 FLOPs and also counts
BatchNorm, activations and pooling; papers that quote "FLOPs" for multiply-adds (He et al.,
Sandler et al.) give about half of these numbers.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from absl import app, flags

from jaxkd import models
from jaxkd.models import densenet, mobilenet_v2, resnet_cifar, resnet_imagenet, wide_resnet

FAMILIES = {"CIFAR ResNet": resnet_cifar, "DenseNet": densenet, "Wide ResNet": wide_resnet,
            "MobileNetV2": mobilenet_v2, "ImageNet ResNet": resnet_imagenet}

#: Published parameter counts (millions) and where they come from.
PUBLISHED = {
    "resnet20": (0.27, "He 2016a T6"), "resnet32": (0.46, "He 2016a T6"),
    "resnet44": (0.66, "He 2016a T6"), "resnet56": (0.85, "He 2016a T6"),
    "resnet110": (1.7, "He 2016a T6"), "preact_resnet110": (1.7, "He 2016b T3"),
    "preact_resnet164": (1.7, "He 2016b T3"),
    "densenet_bc_100_12": (0.8, "Huang 2017 T2"), "densenet_bc_190_40": (25.6, "Huang 2017 T2"),
    "densenet_112_33": (6.3, "BAN T1"), "densenet_90_60": (16.1, "BAN T1"),
    "densenet_80_80": (22.4, "BAN T1"), "densenet_80_120": (50.4, "BAN T1"),
    "wrn_28_1": (0.38, "BAN T1"), "wrn_28_2": (1.48, "BAN T1"), "wrn_28_5": (9.16, "BAN T1"),
    "wrn_28_10": (36.5, "Zagoruyko 2016 T4"), "mobilenetv2": (3.4, "Sandler 2018 T4"),
    "resnet18": (11.69, "torchvision"), "resnet34": (21.80, "torchvision"),
    "resnet50": (25.56, "torchvision"), "resnet101": (44.55, "torchvision"),
    "resnet152": (60.19, "torchvision"),
}

#: RCO (Jin et al. 2019) Table 3: MFLOPs of CIFAR MobileNetV2 by (expansion, width).
RCO_TABLE3 = {4: (5.4, 9.8, 19.3, 32.1), 6: (7.3, 13.5, 27.2, 45.6),
              8: (9.1, 17.1, 35.0, 59.1), 10: (11.0, 20.8, 42.8, 72.6)}
RCO_WIDTHS = (0.35, 0.5, 0.75, 1.0)


def measure(model, size: int, batch: int) -> tuple[int, float]:
    """(parameter count, FLOPs per image) of `model` on `size` x `size` images, abstractly."""
    images = jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32)
    variables = jax.eval_shape(functools.partial(model.init, train=False),
                               jax.random.key(0), images)
    params = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables["params"]))
    lowered = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, images)
    return params, lowered.cost_analysis()["flops"] / batch


def model_table(batch: int) -> list[str]:
    """One markdown row per registered model, by family in registry order."""
    lines = ["| family | model | input | classes | params | published | GFLOPs / image |",
             "|---|---|---|---|---|---|---|"]
    for family, module in FAMILIES.items():
        for name in module.MODELS:
            size = models.input_size(name)
            num_classes = 1000 if size == 224 else 100
            model = models.get_model(name, num_classes=num_classes)
            params, flops = measure(model, size, batch)
            published = PUBLISHED.get(name)
            cited = f"{published[0]}M ({published[1]})" if published else ""
            lines.append(f"| {family} | `{name}` | {size} | {num_classes} | "
                         f"{params / 1e6:.3f}M | {cited} | {flops / 1e9:.3f} |")
    return lines


def rco_table(batch: int) -> list[str]:
    """`mobilenetv2_cifar` MFLOPs against RCO's Table 3, truncated and rounded channels."""
    lines = ["| expansion | width | RCO Table 3 | ours, truncated channels | ours, rounded to 8 "
             "| ours, stem at stride 1 (rounded) |", "|---|---|---|---|---|---|"]
    for expansion, published in RCO_TABLE3.items():
        for width, paper in zip(RCO_WIDTHS, published):
            flops = [measure(models.get_model("mobilenetv2_cifar", num_classes=100, width=width,
                                              expansion=expansion, **extra), 32, batch)[1]
                     for extra in ({"round_channels": False}, {},
                                   {"strides": mobilenet_v2.CIFAR_STRIDE8})]
            lines.append(f"| {expansion} | {width} | {paper} | "
                         + " | ".join(f"{value / 1e6:.1f}" for value in flops) + " |")
    return lines


def define_flags() -> None:
    """The script's flags (absl's global flags: it runs as a script, `app.run`)."""
    flags.DEFINE_integer("batch", 2, "images per lowered program")
    flags.DEFINE_bool("rco", False, "also compare mobilenetv2_cifar with RCO's Table 3")


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    args = flags.FLAGS
    print("\n".join(model_table(args.batch)))
    if args.rco:
        print()
        print("\n".join(rco_table(args.batch)))


if __name__ == "__main__":   # a script (`python benchmarks/model_table.py`): no package
    define_flags()           # imports, so absl's app.run rather than benchmarks.common
    app.run(main)
