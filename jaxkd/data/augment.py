"""Training augmentation and normalisation on the device: pure, jit-able, per-example keys.

The CIFAR augmentation of the papers (and of He et al. 2016): pad each side by 4 pixels
(zeros by default, or a reflection), take a random 32x32 crop of the padded image, and flip
it horizontally with probability 0.5. Evaluation images are only normalised.

References:
    He et al. (2016), "Deep residual learning for image recognition", Sec. 4.2 (CIFAR-10
    augmentation); Furlanello et al. (2018), Yang et al. (2019a, 2019b) and Jin et al.
    (2019) train CIFAR with the same.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxkd.data.dataset import augment_field, validate_augment

AugmentFn = Callable[[jax.Array, jax.Array], jax.Array]


def normalize(images: jax.Array, mean, std) -> jax.Array:
    """(images / 255 - mean) / std per channel, as float32; `mean`, `std` in [0, 1] units."""
    mean = jnp.asarray(mean, jnp.float32)
    std = jnp.asarray(std, jnp.float32)
    return (images.astype(jnp.float32) / 255.0 - mean) / std


def pad_and_crop(image: jax.Array, key: jax.Array, padding: int = 4,
                 pad_mode: str = "constant") -> jax.Array:
    """Pads one HWC image by `padding` on each side and crops a random window of its size."""
    if padding == 0:
        return image
    height, width, channels = image.shape
    padded = jnp.pad(image, ((padding, padding), (padding, padding), (0, 0)), mode=pad_mode)
    key_y, key_x = jax.random.split(key)
    top = jax.random.randint(key_y, (), 0, 2 * padding + 1)
    left = jax.random.randint(key_x, (), 0, 2 * padding + 1)
    return jax.lax.dynamic_slice(padded, (top, left, 0), (height, width, channels))


def random_flip(image: jax.Array, key: jax.Array) -> jax.Array:
    """Mirrors one HWC image left-right with probability 0.5."""
    return jnp.where(jax.random.bernoulli(key), image[:, ::-1], image)


def cifar_augment(image: jax.Array, key: jax.Array, *, padding: int = 4,
                  pad_mode: str = "constant", flip: bool = True) -> jax.Array:
    """Pad-and-crop then flip of one image; dtype and shape are kept."""
    crop_key, flip_key = jax.random.split(key)
    image = pad_and_crop(image, crop_key, padding, pad_mode)
    return random_flip(image, flip_key) if flip else image


def random_resized_crop(image: jax.Array, key: jax.Array, *, flip: bool = True,
                        scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> jax.Array:
    """ImageNet-style crop of one in-memory image, resized back to its size (float32).

    The crop covers a uniform fraction in `scale` of the area with a log-uniform aspect
    ratio in `ratio`; sides larger than the image are clipped (instead of the host
    version's retries).
    """
    height, width, channels = image.shape
    keys = jax.random.split(key, 5)
    area = jax.random.uniform(keys[0], (), minval=scale[0], maxval=scale[1]) * height * width
    aspect = jnp.exp(jax.random.uniform(keys[1], (), minval=math.log(ratio[0]),
                                        maxval=math.log(ratio[1])))
    crop_w = jnp.clip(jnp.sqrt(area * aspect), 1.0, width)
    crop_h = jnp.clip(jnp.sqrt(area / aspect), 1.0, height)
    top = jax.random.uniform(keys[2], ()) * (height - crop_h)
    left = jax.random.uniform(keys[3], ()) * (width - crop_w)
    factor = jnp.stack([height / crop_h, width / crop_w])
    out = jax.image.scale_and_translate(
        image.astype(jnp.float32), (height, width, channels), (0, 1), factor,
        -jnp.stack([top, left]) * factor, method="linear", antialias=True)
    return random_flip(out, keys[4]) if flip else out


def make_augment(augment_cfg: Any) -> AugmentFn:
    """`augment(images[B, H, W, C], key) -> images` for `config.data.augment`.

    Each example gets its own key, `jax.random.split(key, B)[i]`, so results depend only on
    the key and the position in the batch. `kind='none'` returns the images unchanged.
    """
    validate_augment(augment_cfg)
    kind = augment_field(augment_cfg, "kind")
    flip = bool(augment_field(augment_cfg, "flip"))
    if kind == "none":
        return lambda images, key: images
    if kind == "cifar":
        def one(image, key):
            return cifar_augment(image, key, padding=int(augment_field(augment_cfg,
                                                                       "crop_padding")),
                                 pad_mode=augment_field(augment_cfg, "pad_mode"), flip=flip)
    else:
        def one(image, key):
            return random_resized_crop(image, key, flip=flip)

    def augment(images, key):
        return jax.vmap(one)(images, jax.random.split(key, images.shape[0]))
    return augment


def train_transform(images, key, mean, std, augment: AugmentFn) -> jax.Array:
    """Augment then normalise a uint8 batch: what a training step sees."""
    return normalize(augment(images, key), mean, std)


def eval_transform(images, mean, std) -> jax.Array:
    """Normalise only: evaluation images are not augmented."""
    return normalize(images, mean, std)
