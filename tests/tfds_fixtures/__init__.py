"""Tiny TFDS builders prepared for real (array_record on disk) in tests, offline.

Importing this module registers them with TFDS by name. `JaxkdTinyEncoded` yields PNG bytes,
which TFDS stores without encoding anything, so preparing it needs no TensorFlow, like a
data set whose files are already images; `JaxkdTinyArrays` yields numpy images, which TFDS
must PNG-encode with TensorFlow (as CIFAR's builder does).
"""
import io

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

CLASSES = ("ant", "bee", "cat")
TRAIN, TEST, SIZE = 30, 9, 8


def _image(rng) -> np.ndarray:
    return rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def _png(array: np.ndarray) -> io.BytesIO:
    buffer = io.BytesIO()
    PIL.Image.fromarray(array).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


class _Tiny(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")
    encode = True

    def _info(self):
        features = tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(SIZE, SIZE, 3)),
            "label": tfds.features.ClassLabel(names=CLASSES)})
        return tfds.core.DatasetInfo(builder=self, features=features,
                                     supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(TRAIN, 0),
                "test": self._generate_examples(TEST, 1)}

    def _generate_examples(self, n, seed):
        rng = np.random.default_rng(seed)
        for i in range(n):
            image = _image(rng)
            yield i, {"image": _png(image) if self.encode else image, "label": i % 3}


class JaxkdTinyEncoded(_Tiny):
    """Images given as PNG bytes: prepared without TensorFlow."""


class JaxkdTinyArrays(_Tiny):
    """Images given as arrays: TFDS encodes them with TensorFlow when preparing."""
    encode = False


def expected_train_images() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([_image(rng) for _ in range(TRAIN)])


#: The sentences of `JaxkdTinyText`: train (no validation split: the source holds out the
#: last 5% of them) and test; "zebra" is a test word the training split lacks.
TEXT_TRAIN = tuple(f"the {a} {b}" for a in ("cat", "dog", "bird", "fish", "cow")
                   for b in ("sat", "ran", "sang", "fell"))
TEXT_TEST = ("the cat ran", "a zebra sat\n\nthe end")


class JaxkdTinyText(tfds.core.GeneratorBasedBuilder):
    """A text data set (one sentence per example, as lm1b): prepared without TensorFlow."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict({"text": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(TEXT_TRAIN),
                "test": self._generate_examples(TEXT_TEST)}

    def _generate_examples(self, texts):
        for i, sentence in enumerate(texts):
            yield i, {"text": sentence}
