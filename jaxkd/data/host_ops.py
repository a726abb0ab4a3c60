"""Image operations on the host (numpy + Pillow) for sources read into memory and streaming.

The ImageNet training crop follows the standard "Inception" random-resized crop (area
fraction in [0.08, 1], aspect ratio in [3/4, 4/3], 10 tries then a center crop); evaluation
resizes the shorter side to `size / 0.875` and takes the central `size` x `size` crop.

References:
    Szegedy et al. (2015), "Going deeper with convolutions", Sec. 6 (the crop);
    He et al. (2016), "Deep residual learning for image recognition", Sec. 3.4.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

CENTER_CROP_FRACTION = 0.875


def _pil(image: np.ndarray) -> Image.Image:
    if image.ndim == 3 and image.shape[-1] == 1:
        return Image.fromarray(image[..., 0], mode="L")
    return Image.fromarray(image)


def _array(image: Image.Image, channels: int) -> np.ndarray:
    out = np.asarray(image, dtype=np.uint8)
    return out[..., None] if channels == 1 and out.ndim == 2 else out


def to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8[h, w] or [h, w, 1|3|4] -> uint8[h, w, 3]."""
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    return image[..., :3]


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of uint8[h, w, C] to uint8[size, size, C] (aspect ratio not kept)."""
    if image.shape[:2] == (size, size):
        return image
    channels = image.shape[-1]
    return _array(_pil(image).resize((size, size), Image.BILINEAR), channels)


def _crop_resize(image: np.ndarray, box, size: int) -> np.ndarray:
    top, left, height, width = box
    pil = _pil(image).resize((size, size), Image.BILINEAR,
                             box=(left, top, left + width, top + height))
    return _array(pil, image.shape[-1])


def random_resized_crop_box(height: int, width: int, rng: np.random.Generator,
                            scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """(top, left, h, w) of a random crop covering `scale` of the area with `ratio` shape."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def random_resized_crop(image: np.ndarray, size: int, rng: np.random.Generator,
                        flip: bool = True) -> np.ndarray:
    """ImageNet training augmentation: random-resized crop to `size`, then random flip."""
    box = random_resized_crop_box(image.shape[0], image.shape[1], rng)
    out = _crop_resize(image, box, size)
    if flip and rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def center_crop(image: np.ndarray, size: int,
                fraction: float = CENTER_CROP_FRACTION) -> np.ndarray:
    """ImageNet evaluation: the central `fraction` of the shorter side, resized to `size`."""
    height, width = image.shape[:2]
    side = max(1, int(round(min(height, width) * fraction)))
    box = ((height - side) // 2, (width - side) // 2, side, side)
    return _crop_resize(image, box, size)
