"""`jaxkd predict`: class names and probabilities of images with an exported model.

    jaxkd predict --model=EXPORTED_FILE [--top=5] [--json] IMAGE_OR_FOLDER [...]
    jaxkd predict --model=EXPORTED_FILE --sample=1

Images: PNG / JPEG (anything Pillow reads) files, or folders of them (recursively,
sorted); each is converted to the model's channels and resized (bilinear, as the data
pipeline resizes) to the model's image size. `--sample=N` adds the first N test images of
each class of the bundled sample (never trained on), named `sample:test/<class>/<NNNN>.jpg`
and shown with their true class, then the top-1 accuracy on them. Prints, per image, the
`--top` classes with their softmax probabilities.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pathlib
import sys

import jax
import numpy as np
from absl import flags
from PIL import Image, UnidentifiedImageError

from jaxkd import exported
from jaxkd.cli import common
from jaxkd.data import sample

USAGE = __doc__
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def define_flags(fv) -> None:
    flags.DEFINE_string("model", None, "An exported model (`jaxkd export --out=...`).",
                        flag_values=fv)
    flags.DEFINE_integer("top", 5, "Classes to show per image.", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("batch_size", 256, "Images per forward pass.", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_bool("json", False, "Print one JSON list instead of text.", flag_values=fv)
    flags.DEFINE_integer("sample", 0, "Also classify this many test images per class of the "
                         "bundled sample (shown with their true class).", lower_bound=0,
                         flag_values=fv)
    flags.mark_flags_as_required(["model"], flag_values=fv)


@dataclasses.dataclass(frozen=True)
class SampleImage:
    """A test image of the bundled sample, in memory: its archive name, true class and
    JPEG bytes (`jaxkd.data.sample.sample_test_images`)."""

    name: str
    true_class: str
    data: bytes

    def __str__(self) -> str:
        return f"sample:{self.name}"


def sample_images(per_class: int) -> list[SampleImage]:
    """The first `per_class` test images of each class of the bundled sample."""
    if not per_class:
        return []
    return [SampleImage(*image) for image in sample.sample_test_images(per_class)]


def image_paths(args: list[str]) -> list[pathlib.Path]:
    """The image files named by `args` (files, or folders searched recursively)."""
    out = []
    for arg in args:
        path = pathlib.Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)})")
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise ValueError(f"{path}: no such image file or folder")
    return out


def load_image(path: pathlib.Path | SampleImage, image_shape) -> np.ndarray:
    """uint8[H, W, C] of the model's shape from an image file (or a `SampleImage`)."""
    height, width, channels = image_shape
    source = io.BytesIO(path.data) if isinstance(path, SampleImage) else path
    try:
        with Image.open(source) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (width, height):
                img = img.resize((width, height), Image.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not an image Pillow can read ({err})") from err
    return array[..., None] if channels == 1 else array


def predict(model_path, paths, *, top: int = 5, batch_size: int = 256) -> list[dict]:
    """Per image (a path or a `SampleImage`): `{'path', 'top': [{'class', 'index',
    'probability'}, ...]}`, and `'true_class'` for a `SampleImage`."""
    apply_fn, variables, meta = exported.load_model(model_path)
    names = meta["class_names"]
    top = min(top, len(names))
    results = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        images = np.stack([load_image(p, meta["image_shape"]) for p in chunk])
        probs = np.asarray(jax.nn.softmax(apply_fn(variables, images), axis=-1))
        for path, p in zip(chunk, probs):
            order = np.argsort(-p, kind="stable")[:top]
            result = {"path": str(path), "top": [
                {"class": names[i], "index": int(i), "probability": float(p[i])}
                for i in order]}
            if isinstance(path, SampleImage):
                result["true_class"] = path.true_class
            results.append(result)
    return results


def format_text(results: list[dict]) -> str:
    """Each image's name (and true class) then its classes; the top-1 accuracy over the
    images whose true class is known."""
    lines = []
    for r in results:
        known = f"  (true class: {r['true_class']})" if "true_class" in r else ""
        lines.append(r["path"] + known)
        lines += [f"  {t['probability']:7.4f}  {t['class']}" for t in r["top"]]
    labelled = [r for r in results if "true_class" in r]
    if labelled:
        hits = sum(r["top"][0]["class"] == r["true_class"] for r in labelled)
        lines.append(f"top-1 on the {len(labelled)} sample images: {hits}/{len(labelled)} "
                     f"({100 * hits / len(labelled):.1f}%)")
    return "\n".join(lines)


def run(argv: list[str]) -> int:
    fv = common.new_flags()
    define_flags(fv)
    args = common.parse(fv, argv, USAGE)
    common.setup_logging()

    def body():
        if not args and not fv["sample"].value:
            common.fail("name at least one image file or folder (or --sample=N): jaxkd "
                        "predict --model=FILE IMAGE_OR_FOLDER")
        images = image_paths(args) + sample_images(fv["sample"].value)
        results = predict(fv["model"].value, images, top=fv["top"].value,
                          batch_size=fv["batch_size"].value)
        print(json.dumps(results, indent=2) if fv["json"].value else format_text(results))
        sys.stdout.flush()
    return common.guarded(body)
