"""What a run reads and writes: no pickle from user paths; only the documented files."""

import pathlib
import re

from jaxkd.engine import loop

JAXKD = pathlib.Path(loop.__file__).resolve().parents[1]

# Top-level entries a workdir may hold (docs/reliability.md, "Files").
WORKDIR_ENTRIES = {"config.json", "metrics.jsonl", "results.json", "rco_route.json",
                   "provenance.jsonl",
                   "tensorboard", "phases", "report.md", "analysis.json", "accuracy.png",
                   "curves.png", "second_class.png"}
PHASE_ENTRIES = {"ckpt", "final", "anchors", "damaged"}


def test_no_pickle_is_ever_loaded():
    """No pickle-based reader anywhere in jaxkd; numpy files only with allow_pickle=False."""
    unsafe = re.compile(r"\bimport (c?pickle|dill|joblib|shelve|marshal)\b|"
                        r"\bpickle\.loads?\(|torch\.load\(|yaml\.(unsafe_)?load\(|"
                        r"allow_pickle\s*=\s*True")
    hits, loads = [], []
    for path in sorted(JAXKD.rglob("*.py")):
        text = path.read_text()
        hits += [f"{path}: {m.group(0)}" for m in unsafe.finditer(text)]
        loads += [(path, m.start(), text[m.start():m.start() + 200])
                  for m in re.finditer(r"\bnp\.load\(|\bnumpy\.load\(", text)]
    assert not hits, hits
    for path, _, call in loads:
        assert "allow_pickle=False" in call.split(")")[0] + ")", f"{path}: {call[:80]}"
    assert loads, "expected the npz reader to call np.load(..., allow_pickle=False)"


def test_a_run_writes_only_the_documented_files(reference_run):
    _, workdir = reference_run
    assert {p.name for p in workdir.iterdir()} <= WORKDIR_ENTRIES
    for phase in (workdir / "phases").iterdir():
        assert {p.name for p in phase.iterdir()} <= PHASE_ENTRIES
    # keep_checkpoints=3 periodic checkpoints (every 2 steps of 8: 2, 4, 6) + one final.
    assert sorted(p.name for p in (workdir / "phases/baseline/ckpt").iterdir()) == \
        ["2", "4", "6"]
    assert [p.name for p in (workdir / "phases/baseline/final").iterdir()] == ["8"]
    leftovers = [p for p in workdir.rglob("*") if "tmp" in p.name.lower()]
    assert not leftovers, leftovers          # no temporary file or folder left behind
