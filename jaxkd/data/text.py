"""Language-modelling text: Penn Treebank's file layout, a vocabulary, token streams.

`config.data.source='ptb'` reads `config.data.path`, a folder with `ptb.train.txt`,
`ptb.valid.txt` and `ptb.test.txt` (the layout Mikolov's PTB archive and Zaremba et al.'s
code use: one sentence per line, words split by whitespace, rare words already `<unk>`);
`'text_sample'` reads the generated sample bundled in the package
(`jaxkd/data/make_text_sample.py`). As in Zaremba et al. (2014) every line ends with an
`<eos>` token and the vocabulary is the training file's words, most frequent first (ties
by word), so ids are the same on every machine. A word of valid/test missing from the
vocabulary is an error naming the file (PTB has none: its `<unk>` is a word).

The splits: `train` (ptb.train), `test` (ptb.test, what accuracy and perplexity are
reported on) and `heldout` (ptb.valid, the paper's validation perplexity).
"""

from __future__ import annotations

import collections
import dataclasses
import os

import numpy as np

from jaxkd.validation import check

EOS = "<eos>"
FILES = {"train": "ptb.train.txt", "heldout": "ptb.valid.txt", "test": "ptb.test.txt"}
SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample", "text")
TEXT_SOURCES = ("ptb", "text_sample", "tfds_text")


@dataclasses.dataclass
class TextSplits:
    """Token streams of a corpus, in the shape `jaxkd.data.Splits` gives images.

    Attributes:
        train, test, heldout: int32[N] token ids, each split one stream.
        class_names: the vocabulary, in id order (a model's classes are the next tokens).
        bptt: tokens per training window (`config.data.bptt`): the model's input length.
        origin: where the text came from, for messages.
    """

    train: np.ndarray
    test: np.ndarray
    heldout: np.ndarray
    class_names: tuple[str, ...]
    bptt: int
    origin: str = ""
    coarse_class_names = None
    streaming = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int]:
        """The model's input shape: one window of `bptt` tokens."""
        return (self.bptt,)

    @property
    def mean(self) -> np.ndarray:      # nothing to normalise: tokens
        return np.zeros((0,), np.float32)

    std = mean

    def split(self, name: str) -> np.ndarray:
        check(name in FILES, f"split must be one of {tuple(FILES)}, got {name!r}")
        return getattr(self, name)


def words_of(path: str) -> list[str]:
    """The words of a PTB-layout file, `<eos>` after every line."""
    with open(path, encoding="utf-8") as f:
        return [w for line in f for w in (*line.split(), EOS)]


def vocabulary(words: list[str]) -> tuple[str, ...]:
    """The distinct words, most frequent first, ties in word order."""
    counts = collections.Counter(words)
    return tuple(sorted(counts, key=lambda w: (-counts[w], w)))


def load(folder: str, bptt: int, origin: str = "") -> TextSplits:
    """Reads the three files of `folder` into `TextSplits`."""
    missing = [n for n in FILES.values() if not os.path.isfile(os.path.join(folder, n))]
    check(not missing, f"config.data.path={folder!r}: no {', '.join(missing)} there (PTB "
          f"layout: {', '.join(FILES.values())})")
    words = {split: words_of(os.path.join(folder, name)) for split, name in FILES.items()}
    vocab = vocabulary(words["train"])
    index = {w: i for i, w in enumerate(vocab)}
    ids = {}
    for split, ws in words.items():
        unknown = sorted({w for w in ws if w not in index})
        check(not unknown, f"{os.path.join(folder, FILES[split])}: {len(unknown)} word(s) "
              f"not in the training file's vocabulary, e.g. {unknown[:3]}")
        ids[split] = np.asarray([index[w] for w in ws], np.int32)
    check(len(ids["train"]) > bptt, f"{os.path.join(folder, FILES['train'])}: "
          f"{len(ids['train'])} tokens, fewer than config.data.bptt={bptt} + 1")
    return TextSplits(ids["train"], ids["test"], ids["heldout"], vocab, int(bptt),
                      origin or folder)


def load_source(source: str, path: str, bptt: int) -> TextSplits:
    """`config.data.source` 'ptb' (the folder `path`) or 'text_sample' (bundled)."""
    if source == "text_sample":
        return load(SAMPLE_DIR, bptt, origin="bundled text sample")
    check(bool(path), "config.data.path must be the folder of ptb.train.txt, ptb.valid.txt "
          "and ptb.test.txt when config.data.source='ptb'")
    return load(os.path.expanduser(path), bptt)
