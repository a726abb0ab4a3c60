"""Several runs (seeds) of one config: their `results.json`, mean +- sample std.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from jaxkd import workdir as workdir_lib


def load_results(workdir) -> dict:
    """A run's `results.json`."""
    return workdir_lib.read_json(workdir_lib.results_path(workdir))


def mean_std(values: Sequence[float]) -> dict:
    """{'mean', 'std', 'n'}; std is the sample standard deviation (ddof=1), 0 for one run."""
    x = np.asarray(list(values), np.float64)
    std = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
    return {"mean": float(np.mean(x)) if len(x) else float("nan"), "std": std, "n": len(x)}


def aggregate_results(results_list: Sequence[Mapping]) -> dict:
    """Mean ± std over runs of each phase's best/last accuracy and each ensemble's accuracy.

    Args:
        results_list: `results.json` contents of several runs (seeds) of one config; phases
            and ensembles are matched by name, and a run lacking one is left out of its
            statistics (its 'n' says how many runs count).

    Returns:
        {'runs': R, 'phases': {name: {'best_top1': mean_std, 'last_top1': ...,
        'best_top5': ..., 'last_top5': ...}}, 'ensembles': {name: {'top1': ..., 'top5': ...}}}.
    """
    phases, ensembles = {}, {}
    for res in results_list:
        for rec in res.get("phases", []):
            row = phases.setdefault(rec["name"], {})
            for key in ("best_top1", "last_top1", "best_top5", "last_top5"):
                if key in rec:
                    row.setdefault(key, []).append(rec[key])
        for name, ens in res.get("ensembles", {}).items():
            row = ensembles.setdefault(name, {})
            for key in ("top1", "top5"):
                if key in ens:
                    row.setdefault(key, []).append(ens[key])
    return {"runs": len(results_list), "phases": _mean_std_table(phases),
            "ensembles": _mean_std_table(ensembles)}


def _mean_std_table(table: dict) -> dict:
    return {name: {k: mean_std(v) for k, v in row.items()} for name, row in table.items()}
