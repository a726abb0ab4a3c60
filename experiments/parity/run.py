"""Training parity, jaxkd against PyTorch, on real CIFAR-10 images (issue 18, part 1).

    python -m experiments.parity.run --root=/tmp/parity --seeds=3 \\
        --out=experiments/results/parity.json

One protocol (`parity_config`), trained by both frameworks for every seed:
1. **baseline**: `config.model` from scratch with cross-entropy. jaxkd trains its seeds
   packed (`config.num_seeds`); PyTorch runs `experiments.parity.torch_train` per seed.
2. **kd**: a student of the same architecture distilled (Hinton KD, T = 4) from *one*
   teacher, jaxkd's baseline of the first seed. PyTorch gets that teacher through
   `experiments.parity.torch_port`; the port is checked first (largest logit difference
   on 500 test images, recorded).
Per seed both frameworks see the same training subset (`jaxkd.data.load_splits` with that
seed) and the same test images. `--out` gets every per-seed number, mean +- sample std per
(framework, stage), and the paired difference jaxkd - PyTorch per stage (mean, standard
error, n): parity means the difference is within about two standard errors of 0. Results
are written after every run; a rerun skips what `--out` already holds.
"""

from __future__ import annotations

import json
import logging
import pathlib
import time
from typing import Sequence

import numpy as np
from absl import app, flags

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "cifar10-jpeg"

flags.DEFINE_string("root", "/tmp/parity", "Workdirs of the jaxkd runs.")
flags.DEFINE_string("out", "experiments/results/parity.json", "Results JSON.")
flags.DEFINE_integer("seeds", 3, "Seeds 0 .. N-1 of each framework and stage.")
flags.DEFINE_integer("epochs", 15, "Epochs of every run.")
flags.DEFINE_integer("train_per_class", 500, "Training images per class (0: all).")
flags.DEFINE_integer("test_per_class", 0, "Test images per class (0: all 1,000).")
flags.DEFINE_string("model", "resnet8", "CIFAR ResNet of every run.")
flags.DEFINE_string("data", str(DATA), "CIFAR-10 image folder (train/test archives).")
flags.DEFINE_integer("torch_threads", 2, "PyTorch intra-op threads.")
flags.DEFINE_list("stages", ["baseline", "kd"], "Stages to run.")
flags.DEFINE_list("frameworks", ["jaxkd", "torch"], "Frameworks to run.")


def parity_config(*, model: str, epochs: int, train_per_class: int, test_per_class: int,
                  data: str):
    """The shared protocol: `model`, batch 128, SGD Nesterov (momentum 0.9, wd 1e-4 on
    every parameter), cosine from 0.1 to 0 per step, pad-4 crop + flip, one evaluation at
    the end."""
    from jaxkd.config import default_config

    c = default_config()
    c.model = model
    c.data.source, c.data.path = "image_folder", data
    c.data.train_per_class, c.data.test_per_class = train_per_class, test_per_class
    c.batch_size, c.eval_batch_size = 128, 500
    c.num_epochs = epochs
    c.eval_every_epochs = epochs
    c.schedule.name, c.schedule.base_lr, c.schedule.boundaries = "cosine", 0.1, ()
    c.progress_bar, c.write_report = False, False
    return c


def kd_config(base, teacher_dir: pathlib.Path):
    c = base.copy_and_resolve_references()
    c.method = "kd"
    c.teacher.model, c.teacher.checkpoint = base.model, str(teacher_dir)
    c.loss.name, c.loss.temperature = "kd", 4.0
    return c


def run_jaxkd(config, workdir: pathlib.Path, seeds: int) -> list[dict]:
    """jaxkd's runs of `config` for seeds 0..seeds-1, packed: [{seed, top1, wall_time}]."""
    from jaxkd import run as run_lib

    config = config.copy_and_resolve_references()
    config.seed, config.num_seeds = 0, seeds
    results = run_lib.run(config, workdir)
    per_seed = results["per_seed"] if seeds > 1 else [results]
    return [{"seed": i, "top1": r["phases"][-1]["last_top1"],
             "wall_time": sum(p["wall_time"] for p in r["phases"]) / seeds}
            for i, r in enumerate(per_seed)]


def teacher_workdir(root: pathlib.Path, seeds: int) -> pathlib.Path:
    """jaxkd's seed-0 baseline: the one teacher of both frameworks' KD students."""
    from jaxkd import workdir as workdir_lib

    base = root / "jaxkd_baseline"
    return workdir_lib.seed_workdir(base, 0) if seeds > 1 else base


def ported_teacher(workdir: pathlib.Path) -> tuple[object, float]:
    """The teacher as a PyTorch network and the port's largest logit difference."""
    from experiments.parity import torch_port
    from jaxkd.engine import state as state_lib
    from jaxkd.workspace import Workspace

    ws = Workspace.from_workdir(workdir)
    phase = ws.plan[-1]
    variables = jax_to_numpy(state_lib.variables_of(ws.final_state(len(ws.plan) - 1)))
    net = torch_port.torch_model(phase.model, variables, ws.splits.num_classes)
    test = ws.splits.split("test")
    images = ((test.images[:500].astype(np.float32) / 255.0 - ws.splits.mean)
              / ws.splits.std).astype(np.float32)
    diff = torch_port.check_port(ws.phase_model(phase), variables, net, images)
    return net, diff


def jax_to_numpy(tree):
    import jax

    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def summarize(results: dict) -> dict:
    """Mean +- sample std per (framework, stage) and paired jaxkd - torch differences."""
    out = {}
    for stage in ("baseline", "kd"):
        runs = {fw: {r["seed"]: r["top1"] for r in results.get(f"{fw}_{stage}", [])}
                for fw in ("jaxkd", "torch")}
        for fw, by_seed in runs.items():
            vals = list(by_seed.values())
            if vals:
                out[f"{fw}_{stage}"] = {"mean": float(np.mean(vals)), "n": len(vals),
                                        "std": float(np.std(vals, ddof=1)) if len(vals) > 1
                                        else 0.0}
        paired = [runs["jaxkd"][s] - runs["torch"][s] for s in runs["jaxkd"]
                  if s in runs["torch"]]
        if len(paired) > 1:
            out[f"difference_{stage}"] = {
                "mean": float(np.mean(paired)), "n": len(paired),
                "se": float(np.std(paired, ddof=1) / np.sqrt(len(paired)))}
    return out


def main(argv: Sequence[str]) -> None:
    del argv
    logging.getLogger("absl").setLevel(logging.WARNING)
    logging.getLogger("jaxkd").setLevel(logging.INFO)
    fv = flags.FLAGS
    root, out = pathlib.Path(fv.root).absolute(), REPO / fv.out
    results = json.loads(out.read_text()) if out.exists() else {}
    base = parity_config(model=fv.model, epochs=fv.epochs,
                         train_per_class=fv.train_per_class,
                         test_per_class=fv.test_per_class, data=fv.data)
    results["protocol"] = {"model": fv.model, "epochs": fv.epochs, "batch_size": 128,
                           "train_per_class": fv.train_per_class,
                           "test_per_class": fv.test_per_class, "data": "CIFAR-10 JPEG",
                           "schedule": "cosine 0.1 -> 0 per step", "seeds": fv.seeds,
                           "kd_teacher": "jaxkd baseline, seed 0", "temperature": 4.0}

    def save():
        results["summary"] = summarize(results)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=2, sort_keys=True))
        tmp.replace(out)

    def stage_runs(name, jaxkd_fn, torch_fn):
        if "jaxkd" in fv.frameworks and f"jaxkd_{name}" not in results:
            t = time.time()
            results[f"jaxkd_{name}"] = jaxkd_fn()
            print(f"jaxkd {name}: {results[f'jaxkd_{name}']} ({time.time() - t:.0f} s)",
                  flush=True)
            save()
        if "torch" in fv.frameworks:
            done = {r["seed"] for r in results.get(f"torch_{name}", [])}
            for seed in range(fv.seeds):
                if seed not in done:
                    r = torch_fn(seed)
                    results.setdefault(f"torch_{name}", []).append(
                        {k: r[k] for k in ("seed", "top1", "wall_time", "images_per_sec")})
                    print(f"torch {name} seed {seed}: {results[f'torch_{name}'][-1]}",
                          flush=True)
                    save()

    from experiments.parity import torch_train

    if "baseline" in fv.stages:
        stage_runs("baseline", lambda: run_jaxkd(base, root / "jaxkd_baseline", fv.seeds),
                   lambda s: torch_train.train(base, s, threads=fv.torch_threads))
    if "kd" in fv.stages:
        teacher_dir = teacher_workdir(root, fv.seeds)
        from jaxkd import workdir as workdir_lib

        cfg = kd_config(base, workdir_lib.phase_dir(teacher_dir, "baseline"))
        net, diff = ported_teacher(teacher_dir)
        results["port_max_abs_logit_diff"] = diff
        print(f"teacher port: largest logit difference {diff:.2e}", flush=True)
        stage_runs("kd", lambda: run_jaxkd(cfg, root / "jaxkd_kd", fv.seeds),
                   lambda s: torch_train.train(cfg, s, teacher=net,
                                               threads=fv.torch_threads))
    save()
    print(json.dumps(results["summary"], indent=2))


if __name__ == "__main__":
    app.run(main)
