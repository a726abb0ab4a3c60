"""Paired differences per seed between the phases and ensembles of a `jaxkd grid` root.

    python -m experiments.paired --root=/work/kd_runs/cpu_converged \\
        --pairs=grids/cpu_converged.py

Each seed of a grid draws its own training subset and initialisation, so the seed-to-seed
spread is often larger than an effect; the difference of two results of the same seed
removes that shared part. A term is `config/phase` (a phase's last test top-1) or
`config/ensemble:NAME`; the pairs come from the grid file's `PAIRS` list of
(label, a, b), and each row is a - b in percentage points: mean ± sample std over seeds,
its standard error, and the per-seed values. Seeds are read wherever they finished
(packed `seeds0-2/seeds/<k>/` or alone `seed<k>/`).
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Sequence

from absl import app, flags

def define_flags() -> None:
    """The command line (defined only when run as a script)."""
    flags.DEFINE_string("root", None, "The grid's --root.")
    flags.DEFINE_string("pairs", None, "The grid file (its PAIRS list).")
    flags.DEFINE_integer("seeds", 3, "Seeds 0 .. N-1.")


def seed_results(root: pathlib.Path, config: str, seed: int, seeds: int) -> dict | None:
    """results.json of `seed` of `config`, packed or alone; None if it did not finish."""
    from jaxkd import grid

    workdir = grid.finished_workdir(root, config, seed, range(seeds))
    return None if workdir is None else json.loads((workdir / grid.RESULTS).read_text())


def term_value(results: dict, term: str) -> float:
    """Test top-1 (%) of `phase` or `ensemble:NAME` in one seed's results."""
    if term.startswith("ensemble:"):
        return 100 * results["ensembles"][term.split(":", 1)[1]]["top1"]
    phases = {p["name"]: p for p in results["phases"]}
    return 100 * phases[term]["last_top1"]


def paired(a: Sequence[float], b: Sequence[float]) -> dict:
    """Mean, sample std, standard error and values of the per-seed differences a - b."""
    diffs = [x - y for x, y in zip(a, b)]
    n = len(diffs)
    mean = sum(diffs) / n
    std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else float("nan")
    return {"mean": mean, "std": std, "se": std / math.sqrt(n), "n": n, "per_seed": diffs}


def value(root: pathlib.Path, spec: str, seed: int, seeds: int) -> float | None:
    config, term = spec.split("/", 1)
    results = seed_results(root, config, seed, seeds)
    return None if results is None else term_value(results, term)


def table(root: pathlib.Path, pairs, seeds: int) -> str:
    lines = ["| comparison (test top-1, pp) | n | mean ± std | SE | per seed |",
             "|---|---|---|---|---|"]
    for label, a, b in pairs:
        both = [(value(root, a, s, seeds), value(root, b, s, seeds)) for s in range(seeds)]
        both = [(x, y) for x, y in both if x is not None and y is not None]
        if not both:
            lines.append(f"| {label} | 0 | – | – | – |")
            continue
        d = paired([x for x, _ in both], [y for _, y in both])
        per_seed = ", ".join(f"{v:+.2f}" for v in d["per_seed"])
        lines.append(f"| {label} | {d['n']} | {d['mean']:+.2f} ± {d['std']:.2f} | "
                     f"{d['se']:.2f} | {per_seed} |")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    del argv
    from jaxkd import grid

    pairs = grid.load_module(flags.FLAGS.pairs).PAIRS
    print(table(pathlib.Path(flags.FLAGS.root), pairs, flags.FLAGS.seeds))


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["root", "pairs"])
    app.run(main)
