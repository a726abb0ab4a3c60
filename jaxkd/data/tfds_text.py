"""Language-modelling text from TensorFlow Datasets (`config.data.source='tfds_text'`).

PTB is not in TFDS; its text data sets are (`config.data.name`): 'lm1b' (One Billion
Words, one sentence per example), 'tiny_shakespeare' (one example per split, lines of a
play), and any other with a text feature (`config.data.text_key`, default 'text'). Read
through `tfds.data_source` as the image data sets are (`jaxkd.data.tfds_source`), then
made into the token streams of `jaxkd.data.text`: every non-empty line of an example is
its whitespace-separated words then `<eos>` (PTB's layout), in example order.

Vocabulary: the training split's words, most frequent first (ties by word), capped at
`config.data.vocab_size` (0: every word) with the rarest replaced by `<unk>`, which also
stands for the test and held-out words the training split lacks (PTB's rare words are
`<unk>` in its files already). Splits: `config.data.train_split` ('train'),
`config.data.test_split` ('test') and the held-out split 'validation' where the data set
has one, else the last 5% of the training examples (taken out of train).
"""

from __future__ import annotations

import collections

import numpy as np

from jaxkd.data import text, tfds_source
from jaxkd.validation import check

UNK = "<unk>"
HELDOUT_FRACTION = 0.05
_CHUNK = 1024


def words_of_texts(texts) -> list[str]:
    """Each non-empty line's words, then `<eos>` (the PTB layout of `jaxkd.data.text`)."""
    out = []
    for t in texts:
        t = t.decode("utf-8") if isinstance(t, bytes) else str(t)
        for line in t.splitlines():
            words = line.split()
            if words:
                out += words + [text.EOS]
    return out


def capped_vocabulary(words: list[str], vocab_size: int) -> tuple[str, ...]:
    """`jaxkd.data.text.vocabulary`, the rarest words folded into `<unk>` beyond
    `vocab_size` entries (0: no cap); `<unk>` keeps its frequency rank."""
    counts = collections.Counter(words)
    vocab = text.vocabulary(words)
    if not vocab_size or len(vocab) <= vocab_size:
        return vocab
    kept = [w for w in vocab if w != UNK][:vocab_size - 1]
    counts[UNK] += sum(counts[w] for w in vocab if w not in kept and w != UNK)
    return tuple(sorted(kept + [UNK], key=lambda w: (-counts[w], w)))


def ids_of(words: list[str], vocab: tuple[str, ...]) -> np.ndarray:
    """Token ids, words outside `vocab` as `<unk>`."""
    index = {w: i for i, w in enumerate(vocab)}
    unk = index.get(UNK)
    return np.asarray([index.get(w, unk) for w in words], np.int32)


def _texts(source, text_key: str, where: str) -> list:
    n = len(source)
    check(n > 0, f"{where}: the split is empty")
    out = []
    for start in range(0, n, _CHUNK):
        out += [ex[text_key] for ex in
                tfds_source._get_many(source, range(start, min(start + _CHUNK, n)))]
    return out


def load(name: str, *, bptt: int, data_dir: str = "", text_key: str = "text",
         train_split: str = "", test_split: str = "", vocab_size: int = 0) -> text.TextSplits:
    """Opens a TFDS text data set as `TextSplits` (see the module docstring).

    Raises:
        ValueError: naming config.data.name / text_key / vocab_size, or the split that
            has fewer tokens than a window.
        DataUnavailableError: a failed download or prepare (one line, `tfds_source`).
    """
    tfds = tfds_source.import_tfds()
    info = tfds_source._builder(name, data_dir).info
    features = sorted(info.features.keys())
    check(text_key in info.features, f"config.data.text_key={text_key!r} is not a feature "
          f"of {name}; features: {features}")
    train_split, test_split = train_split or "train", test_split or "test"

    def read(split):
        where = f"tfds {name} ({split})"
        return _texts(tfds_source.data_source(tfds, name, split, data_dir), text_key, where)

    train = read(train_split)
    if "validation" in info.splits:
        heldout = read("validation")
    else:
        check(len(train) >= 2, f"tfds {name} ({train_split}): one example, and the data "
              f"set has no 'validation' split to hold out")
        cut = len(train) - max(1, round(HELDOUT_FRACTION * len(train)))
        train, heldout = train[:cut], train[cut:]
    words = {"train": words_of_texts(train), "test": words_of_texts(read(test_split)),
             "heldout": words_of_texts(heldout)}
    vocab = capped_vocabulary(words["train"], vocab_size)
    known = set(vocab)
    if UNK not in known and any(w not in known for split in ("test", "heldout")
                                for w in words[split]):
        vocab = vocab + (UNK,)     # for the evaluation words the training split lacks
    ids = {split: ids_of(ws, vocab) for split, ws in words.items()}
    check(len(ids["train"]) > bptt, f"tfds {name} ({train_split}): {len(ids['train'])} "
          f"tokens, fewer than config.data.bptt={bptt} + 1")
    return text.TextSplits(ids["train"], ids["test"], ids["heldout"], vocab, int(bptt),
                           origin=f"tfds {name}")
