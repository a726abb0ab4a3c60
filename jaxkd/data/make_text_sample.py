"""Writes the bundled text sample (`config.data.source='text_sample'`).

    python -m jaxkd.data.make_text_sample [--out=jaxkd/data/sample/text]

Penn Treebank's text is not ours to redistribute, so the sample is generated: sentences
of a small English-like grammar (determiner, adjectives, noun, verb, prepositional
phrase, sometimes a relative clause), words drawn with Zipf-like weights from fixed
lists, a fixed seed. It has PTB's file layout (`ptb.train.txt`, `ptb.valid.txt`,
`ptb.test.txt`, one sentence per line, words split by spaces, a leading space as in
PTB) so the same reader reads both. Being grammatical, it is predictable beyond word
frequencies: a language model's perplexity falls well below the unigram one.
"""

from __future__ import annotations

import os
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample", "text")
SENTENCES = {"train": 4000, "valid": 400, "test": 400}
SEED = 0

WORDS = {
    "det": "the a this that every some no one".split(),
    "adj": ("small old new red quiet large young bright cold dark happy strange green "
            "early late heavy").split(),
    "noun": ("cat dog man woman child bird house car tree river city teacher student "
             "market ship book window garden letter road").split(),
    "verb": ("saw found liked watched followed built opened carried wanted visited "
             "painted moved").split(),
    "iverb": "slept ran arrived waited laughed fell stayed sang".split(),
    "prep": "near under behind above beside inside across".split(),
    "rel": "that which".split(),
}


def _weights(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1)
    return w / w.sum()


def _pick(rng, kind: str) -> str:
    words = WORDS[kind]
    return words[rng.choice(len(words), p=_weights(len(words)))]


def _noun_phrase(rng) -> list[str]:
    words = [_pick(rng, "det")]
    words += [_pick(rng, "adj") for _ in range(rng.choice(3, p=[0.5, 0.35, 0.15]))]
    return words + [_pick(rng, "noun")]


def sentence(rng) -> list[str]:
    """One sentence of the grammar."""
    words = _noun_phrase(rng)
    if rng.random() < 0.25:
        words += [_pick(rng, "rel"), _pick(rng, "verb")] + _noun_phrase(rng)
    if rng.random() < 0.4:
        words.append(_pick(rng, "iverb"))
    else:
        words += [_pick(rng, "verb")] + _noun_phrase(rng)
    if rng.random() < 0.5:
        words += [_pick(rng, "prep")] + _noun_phrase(rng)
    return words


def write(out: str = OUT) -> dict[str, str]:
    """Writes the three files; returns {split: path}."""
    rng = np.random.default_rng(SEED)
    os.makedirs(out, exist_ok=True)
    paths = {}
    for split, n in SENTENCES.items():
        paths[split] = os.path.join(out, f"ptb.{split}.txt")
        with open(paths[split], "w", encoding="utf-8") as f:
            for _ in range(n):
                f.write(" " + " ".join(sentence(rng)) + " \n")
    return paths


def main(argv: list[str]) -> int:
    out = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--out=")), OUT)
    for split, path in write(out).items():
        print(f"{split}: {path} ({os.path.getsize(path)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
