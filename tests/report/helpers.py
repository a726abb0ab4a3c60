"""Hand-written workdirs of a two-cycle snapshot-distillation run (config.json,
metrics.jsonl, results.json): the report's inputs without training anything."""

from __future__ import annotations

import json
import pathlib

from jaxkd.config import default_config
from tests.helpers import set_fields

REPO = pathlib.Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sd_config(**changes) -> dict:
    c = default_config()
    c.method, c.model, c.num_epochs = "snapshot_distillation", "resnet8", 2
    c.snapshot.cycles = 2
    c.schedule.name, c.schedule.boundaries = "cosine", ()
    return json.loads(set_fields(c, **changes).to_json())


def _metrics() -> list[dict]:
    """One train record and one evaluation per phase (one epoch per mini-generation)."""
    out = []
    for i, name in enumerate(("cycle1", "cycle2")):
        out.append(dict(phase=name, kind="train", step=5 * (i + 1), loss=2.0 - i * 0.3))
        out.append(dict(phase=name, kind="eval", step=5 * (i + 1), epoch=i + 1,
                        loss=1.9 - i * 0.3, top1=0.3 + 0.1 * i, top5=0.8))
    return out


def _workdir(path: pathlib.Path, *, finished: bool, **changes) -> pathlib.Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(_sd_config(**changes)))
    (path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in _metrics()))
    if finished:
        phases = [dict(name=n, role="mini_generation", model="resnet8", best_top1=t,
                       last_top1=t, best_top5=0.8, last_top5=0.8, best_epoch=i + 1,
                       epochs=1, wall_time=1.0) for i, (n, t) in enumerate(
                           (("cycle1", 0.3), ("cycle2", 0.4)))]
        ens = {"snapshot_ensemble": dict(members=["cycle1", "cycle2"], top1=0.41, top5=0.8),
               "sd_ensemble": dict(members=["cycle1", "cycle2"], top1=0.42, top5=0.8)}
        (path / "results.json").write_text(json.dumps(dict(
            method="snapshot_distillation", phases=phases, ensembles=ens,
            run_wall_time=2.0)))
    return path
