"""experiments/paired.py: per-seed paired differences of a grid root (hand-computed)."""
import json

import pytest

from experiments import paired


def _write(root, config, seed, phases, ensembles=None, packed=True):
    where = (root / config / "seeds0-2" / "seeds" / str(seed) if packed
             else root / config / f"seed{seed}")
    where.mkdir(parents=True)
    results = {"phases": [{"name": n, "last_top1": v} for n, v in phases.items()],
               "ensembles": {k: {"top1": v} for k, v in (ensembles or {}).items()}}
    (where / "results.json").write_text(json.dumps(results))


def test_paired_differences_by_hand():
    d = paired.paired([25.0, 24.0, 26.0], [24.0, 24.5, 24.0])
    # differences +1.0, -0.5, +2.0: mean 0.8333, sample std sqrt(1.5833) = 1.2583
    assert d["per_seed"] == [1.0, -0.5, 2.0] and d["n"] == 3
    assert d["mean"] == pytest.approx(0.8333333)
    assert d["std"] == pytest.approx(1.2583057) and d["se"] == pytest.approx(1.2583057 / 3**0.5)


def test_table_pairs_seeds_packed_or_alone_and_skips_unfinished(tmp_path):
    for s, (base, student) in enumerate([(0.24, 0.25), (0.245, 0.24), (0.24, 0.26)]):
        _write(tmp_path, "ban", s, {"gen0": base, "gen1": student}, {"bane": base + 0.01})
    _write(tmp_path, "ls", 0, {"baseline": 0.30}, packed=False)
    pairs = [("gen1 − gen0", "ban/gen1", "ban/gen0"),
             ("bane − gen0", "ban/ensemble:bane", "ban/gen0"),
             ("ls − gen0", "ls/baseline", "ban/gen0"),
             ("missing", "sd/cycle4", "ban/gen0")]
    rows = paired.table(tmp_path, pairs, seeds=3).splitlines()[2:]
    assert rows[0] == "| gen1 − gen0 | 3 | +0.83 ± 1.26 | 0.73 | +1.00, -0.50, +2.00 |"
    assert rows[1].startswith("| bane − gen0 | 3 | +1.00 ± 0.00 |")
    assert rows[2].startswith("| ls − gen0 | 1 | +6.00 ± nan |")
    assert rows[3] == "| missing | 0 | – | – | – |"
