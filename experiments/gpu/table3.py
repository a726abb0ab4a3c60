"""[SD] Table 3's ResNet-20 row in one GPU lease: baseline and SD (K = 4, T = 2), full protocol.

    python -m experiments.gpu.table3 --data=/tmp/jaxkd_gpu/cifar-100-binary \\
        --bench=/tmp/jaxkd_gpu/bench --out=$OUT --budget_s=450

Issue 18, part 3 (d). The protocol is the paper's and is never shortened: ResNet-20 on the
full CIFAR-100 (50 000 training images, the 10 000 test images), batch 128, 164 epochs,
SGD Nesterov 0.9, wd 1e-4, pad-4 crop + flip; the baseline (BL) one cosine from 0.1 to 0
over the 164 epochs; SD K = 4 mini-generations of 41 epochs, each restarting the cosine
at 0.1, mini-generation k >= 2 taught by the snapshot ending k - 1 with T = 2
([SD] Eqn 3, `configs/sd_resnet20.py`). Test evaluation at the end of each 41 epochs (the
ends of SD's mini-generations; "best" is over those 4 points). Computation in bfloat16
with float32 master weights (`config.dtype`), the one departure from the paper's float32.

What varies with the lease is the number of seeds, trained packed (`config.num_seeds`):
the largest N in the packing benchmark's table (`--bench`, written by
`python -m benchmarks.run --suite=lease` just before) whose estimated time for both runs
fits `--budget_s`, at least 1 (`--seeds` forces N). The estimate is images over the
measured packed img/s (plain steps for BL and SD's first cycle, KD steps for cycles 2-4),
times `--overhead` for evaluation and checkpoints, plus `--compile_s` per phase.

Every `--poll_s` seconds and when a run ends, `--out`/table3.json is rewritten atomically
with what has finished so far (per seed, the test top-1 at every evaluation, and each
run's results when it ends), so a command killed at the lease's limit still returns every
phase that ended. `--tiny` shrinks everything (ResNet-8, 2 epochs per cycle on 10 images
per class) to rehearse the script on a CPU; its numbers mean nothing.
"""

from __future__ import annotations

import json
import os
import pathlib
import threading
import time
from typing import Sequence

from absl import app, flags


def define_flags() -> None:
    """The command line (defined only when run as a script, so importing this module
    beside other experiments defines no flags)."""
    flags.DEFINE_string("data", "/tmp/jaxkd_gpu/cifar-100-binary",
                        "CIFAR-100 binary version: the extracted folder or the .tar.gz.")
    flags.DEFINE_string("bench", "/tmp/jaxkd_gpu/bench", "Folder of the lease suite's JSON "
                        "files (packing_resnet20.json, packing_resnet20_kd.json).")
    flags.DEFINE_string("out", os.environ.get("OUT", "/tmp/jaxkd_gpu/out"),
                        "Where table3.json goes (the device's $OUT).")
    flags.DEFINE_string("root", "/tmp/jaxkd_gpu/runs", "Workdirs of the two runs.")
    flags.DEFINE_float("budget_s", 450.0, "Seconds the two runs may take together.")
    flags.DEFINE_integer("seeds", 0, "Packed seeds (0: the most that fit --budget_s).")
    flags.DEFINE_float("overhead", 1.3, "Factor on the step-only estimate (evaluation, "
                       "checkpoints, data).")
    flags.DEFINE_float("compile_s", 40.0, "Seconds of compilation per phase in the estimate.")
    flags.DEFINE_float("poll_s", 10.0, "Seconds between rewrites of table3.json.")
    flags.DEFINE_string("dtype", "bfloat16", "config.dtype of both runs.")
    flags.DEFINE_bool("tiny", False, "Rehearsal size (ResNet-8, a few images, 2 epochs a cycle).")


FLAGS = flags.FLAGS

CYCLES, TEMPERATURE = 4, 2.0
RUNS = ("baseline", "sd_k4_t2")
#: [SD] Table 3, ResNet-20 on CIFAR-100, error (%).
PAPER = {"baseline": {"last": 33.57},
         "sd_k4_t2": {"last": 32.31, "best": 32.31, "ensemble": 32.08},
         "source": "[SD] Yang et al., CVPR 2019, Table 3, ResNet-20, T = 2 (error %)"}


def configs(*, data: str, num_seeds: int, dtype: str, tiny: bool) -> dict:
    """The two runs of the row, {name: ConfigDict}; see the module docstring."""
    from jaxkd import presets
    from jaxkd.config import default_config

    base = default_config()
    presets.cifar100_resnet(base, 20, schedule="cosine")
    base.data.source, base.data.path = "cifar_binary", data
    base.dtype, base.num_seeds = dtype, num_seeds
    if tiny:
        base.model, base.num_epochs, base.batch_size = "resnet8", 2 * CYCLES, 50
        base.data.train_per_class, base.data.test_per_class = 10, 5
    steps = (50_000 if not tiny else 1_000) // base.batch_size
    epochs_per_cycle = base.num_epochs // CYCLES
    base.log_every_steps = steps
    # One program per epoch on the GPU (a rolled lax.scan); XLA:CPU unrolls the chunk, so
    # the CPU rehearsal keeps it at 2 steps (compile time, not correctness).
    base.steps_per_call = steps if not tiny else 2
    base.checkpoint_every_steps = steps * epochs_per_cycle
    base.eval_every_epochs = epochs_per_cycle
    base.eval_batch_size = 1000 if not tiny else 500
    base.keep_checkpoints = 1
    base.progress_bar, base.write_report = False, False
    baseline = base.copy_and_resolve_references()
    baseline.method = "baseline"
    sd = presets.snapshot(base.copy_and_resolve_references(), temperature=TEMPERATURE,
                          cycles=CYCLES)
    return {"baseline": baseline, "sd_k4_t2": sd}


def packed_rates(bench: pathlib.Path) -> dict[str, dict[int, float]]:
    """{'plain' | 'kd': {N: img/s summed over N packed runs}} from the packing benchmark."""
    rates = {}
    for kind, name in (("plain", "packing_resnet20.json"), ("kd", "packing_resnet20_kd.json")):
        path = bench / name
        if not path.exists():
            raise FileNotFoundError(f"--bench: {path} is missing; run `python -m "
                                    f"benchmarks.run --suite=lease --out_dir={bench}` first "
                                    f"or pass --seeds")
        seeds = json.loads(path.read_text())["seeds"]
        rates[kind] = {int(n): r["packed"]["items_per_s"] for n, r in seeds.items()}
    return rates


def estimate_s(n: int, rates: dict, *, epochs: int, images: int, overhead: float,
               compile_s: float) -> float:
    """Seconds for BL and SD with `n` packed seeds (see the module docstring)."""
    per_run = n * images * epochs
    plain, kd = rates["plain"][n], rates["kd"][n]
    steps_s = per_run / plain + per_run / CYCLES / plain + per_run * (CYCLES - 1) / CYCLES / kd
    return overhead * steps_s + compile_s * (1 + CYCLES)


def choose_seeds(rates: dict, budget: float, **kw) -> tuple[int, dict[int, float]]:
    """The largest measured N whose estimate fits `budget` (at least 1), and every estimate."""
    shared = sorted(set(rates["plain"]) & set(rates["kd"]))
    estimates = {n: estimate_s(n, rates, **kw) for n in shared}
    fitting = [n for n in shared if estimates[n] <= budget]
    return (max(fitting) if fitting else 1), estimates


def seed_dirs(workdir: pathlib.Path, num_seeds: int) -> list[pathlib.Path]:
    """Each seed's workdir: the run's own, or `workdir.seed_workdir` of a packed run."""
    from jaxkd import workdir as workdir_lib

    if num_seeds == 1:
        return [workdir]
    return [workdir_lib.seed_workdir(workdir, k) for k in range(num_seeds)]


def evaluations(workdir: pathlib.Path) -> list[dict]:
    """The test evaluations in a workdir's metrics.jsonl so far (a torn last line skipped)."""
    path, out = workdir / "metrics.jsonl", []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") == "eval":
            out.append({k: record.get(k) for k in ("phase", "epoch", "top1", "top5")})
    return out


def write_atomically(path: pathlib.Path, record: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


class Progress:
    """table3.json: the protocol, the sizing, and each run's evaluations and results."""

    def __init__(self, out: pathlib.Path, root: pathlib.Path, header: dict, num_seeds: int):
        self.path, self.root, self.num_seeds = out / "table3.json", root, num_seeds
        self.record = {**header, "paper": PAPER, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "runs": {name: {"status": "pending"} for name in RUNS}}
        self.start, self.lock = time.perf_counter(), threading.Lock()
        out.mkdir(parents=True, exist_ok=True)

    def update(self, name: str | None = None, **fields) -> None:
        with self.lock:
            if name:
                self.record["runs"][name].update(fields)
            for run, entry in self.record["runs"].items():
                if entry["status"] != "pending":
                    entry["evaluations"] = [evaluations(d) for d in
                                            seed_dirs(self.root / run, self.num_seeds)]
            self.record["elapsed_s"] = time.perf_counter() - self.start
            write_atomically(self.path, self.record)

    def poll(self, every: float, stop: threading.Event) -> None:
        while not stop.wait(every):
            self.update()


def row(results: dict) -> dict:
    """Error (%) of a finished run: the last phase's last, the best phase end, and each
    ensemble (packed runs: means over the seeds, with `n`)."""
    agg = results.get("aggregate")
    if agg:
        phases, ensembles = agg["phases"], agg.get("ensembles", {})
        last = phases[list(phases)[-1]]["last_top1"]["mean"]
        best = max(p["best_top1"]["mean"] for p in phases.values())
        top1 = {k: v["top1"]["mean"] for k, v in ensembles.items() if "top1" in v}
        n = agg["runs"]
    else:
        phases, ensembles = results["phases"], results.get("ensembles", {})
        last, best = phases[-1]["last_top1"], max(p["best_top1"] for p in phases)
        top1 = {k: v["top1"] for k, v in ensembles.items() if "top1" in v}
        n = 1
    return {"last": 100 * (1 - last), "best": 100 * (1 - best), "n": n,
            **{f"ensemble_{k}": 100 * (1 - v) for k, v in top1.items()}}


def main(argv: Sequence[str]) -> None:
    del argv
    from jaxkd import run as run_lib
    from jaxkd.main import quiet_library_logs

    quiet_library_logs()       # jaxkd's INFO lines; not orbax's per-save chatter

    out, root = pathlib.Path(FLAGS.out), pathlib.Path(FLAGS.root)
    probe = configs(data=FLAGS.data, num_seeds=1, dtype=FLAGS.dtype, tiny=FLAGS.tiny)
    base = probe["baseline"]
    images = 50_000 if not FLAGS.tiny else 1_000
    sizing = {"budget_s": FLAGS.budget_s, "overhead": FLAGS.overhead,
              "compile_s": FLAGS.compile_s}
    if FLAGS.seeds:
        num_seeds = FLAGS.seeds
        sizing["chosen_by"] = "--seeds"
    else:
        rates = packed_rates(pathlib.Path(FLAGS.bench))
        num_seeds, estimates = choose_seeds(rates, FLAGS.budget_s, epochs=base.num_epochs,
                                            images=images, overhead=FLAGS.overhead,
                                            compile_s=FLAGS.compile_s)
        sizing.update(chosen_by="packing benchmark", packed_img_per_s=rates,
                      estimate_s=estimates)
    sizing["num_seeds"] = num_seeds
    print(f"table3: {num_seeds} packed seed(s); sizing {json.dumps(sizing, default=str)}",
          flush=True)
    header = {"protocol": {"model": base.model, "epochs": base.num_epochs,
                           "batch_size": base.batch_size, "dtype": base.dtype,
                           "cycles": CYCLES, "temperature": TEMPERATURE,
                           "train_images": images, "tiny": FLAGS.tiny},
              "sizing": sizing}
    progress = Progress(out, root, header, num_seeds)
    stop = threading.Event()
    poller = threading.Thread(target=progress.poll, args=(FLAGS.poll_s, stop), daemon=True)
    poller.start()
    try:
        for name, config in configs(data=FLAGS.data, num_seeds=num_seeds, dtype=FLAGS.dtype,
                                    tiny=FLAGS.tiny).items():
            started = time.perf_counter()
            progress.update(name, status="running")
            try:
                results = run_lib.run(config, root / name)
            except Exception as err:  # noqa: BLE001 - record it, try the other run
                progress.update(name, status=f"failed: {err!r}"[:2000],
                                wall_s=time.perf_counter() - started)
                continue
            progress.update(name, status="finished", wall_s=time.perf_counter() - started,
                            error_pct=row(results), aggregate=results.get("aggregate"))
            print(f"table3: {name} finished in {time.perf_counter() - started:.0f} s: "
                  f"error % {row(results)}", flush=True)
    finally:
        stop.set()
        progress.update()
    print(f"table3: wrote {progress.path}; paper {PAPER}", flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
