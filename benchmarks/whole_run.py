"""Whole-run cost of the methods relative to a baseline on the same data and epochs.

Runs `jaxkd.run.run` (what `python -m jaxkd.main` runs: plan, phases, evaluation every
epoch, checkpoints, results.json) for

- `baseline`: one phase of `--epochs` epochs;
- `sd`: snapshot distillation with `--cycles` mini-generations over the same `--epochs`
  in total (from cycle 2 on every step also runs the teacher forward);
- `ban`: born-again networks, generation 0 plus `--generations` (M) students, each of
  `--epochs` epochs (so the ideal ratio is about M + 1 plus the teachers' forward passes),

each in a fresh process (its own compiles, as a user pays them), alternating methods over
`--repeats`, and reports the median wall time of `run()` and the ratios to the baseline.
A tiny model on a class-balanced subset of the bundled CIFAR-10 sample keeps it short.

    python -m benchmarks.whole_run --model=resnet8 --epochs=4 --train_per_class=50
"""

from __future__ import annotations

import statistics
import tempfile
import time

from absl import flags

from benchmarks import common

METHODS = ("baseline", "sd", "ban")


def _config(method: str, args):
    from jaxkd.config import default_config

    c = default_config()
    c.model = args.model
    c.data.source = "sample"
    c.data.train_per_class = args.train_per_class
    c.batch_size = args.batch_size
    c.eval_batch_size = args.eval_batch_size
    c.num_epochs = args.epochs
    c.schedule.name = "cosine"
    c.schedule.boundaries = ()
    c.progress_bar = False
    c.write_report = False
    c.log_every_steps = 1000
    c.keep_checkpoints = 1
    c.num_devices = args.num_devices
    if method == "sd":
        c.method = "snapshot_distillation"
        c.snapshot.cycles = args.cycles
    elif method == "ban":
        c.method = "born_again"
        c.generations = args.generations
    else:
        c.method = "baseline"
    return c


def _worker(args, method: str = "") -> dict:
    from jaxkd import run as run_lib

    method = method or args.method
    config = _config(method, args)
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        results = run_lib.run(config, workdir)
        wall = time.perf_counter() - start
    return {"benchmark": "whole_run_worker", "method": method, "wall_s": wall,
            "run_wall_time": results.get("run_wall_time"),
            "phases": len(results["phases"]),
            "phase_train_wall_s": [p.get("wall_time") for p in results["phases"]],
            # Everything outside the phases' step loops: start-up, data loading, compiles,
            # evaluations, checkpoints, the final ensemble evaluation.
            "outside_step_loops_s": wall - sum(p.get("wall_time") or 0.0
                                               for p in results["phases"]),
            "last_top1": [p.get("last_top1")
                           for p in results["phases"]]}


def main(argv=None) -> dict:
    fv = common.flag_values()
    flags.DEFINE_string("model", "resnet8", "model (jaxkd.models name)", flag_values=fv)
    flags.DEFINE_integer("epochs", 4, "baseline epochs (= SD total)", flag_values=fv)
    flags.DEFINE_integer("cycles", 4, "SD mini-generations", flag_values=fv)
    flags.DEFINE_integer("generations", 1, "BAN generations M", flag_values=fv)
    flags.DEFINE_integer("train_per_class", 50, "training images per class from the sample "
                         "(0: all 250)", flag_values=fv)
    flags.DEFINE_integer("batch_size", 100, "batch size", flag_values=fv)
    flags.DEFINE_integer("eval_batch_size", 500, "evaluation batch size", flag_values=fv)
    flags.DEFINE_integer("num_devices", 1, "mesh size (0: all devices)", flag_values=fv)
    flags.DEFINE_integer("repeats", 1, "alternating repetitions", flag_values=fv)
    flags.DEFINE_string("methods", ",".join(METHODS), "comma-separated methods to time",
                        flag_values=fv)
    flags.DEFINE_string("method", "", "(worker) run one method in-process", flag_values=fv)
    flags.DEFINE_bool("in_process", False, "run the methods one after the other in this "
                      "process (tests, notebooks); by default each run gets a fresh process",
                      flag_values=fv)
    args = common.parse(fv, argv, __doc__)
    common.apply_xla_flags(args.xla_flags)
    if args.method:
        return common.emit(_worker(args), args.json)
    methods = args.methods.split(",")
    if "baseline" not in methods:
        methods.insert(0, "baseline")
    walls: dict[str, list[float]] = {m: [] for m in methods}
    fixed = [f"--{k}={getattr(args, k)}" for k in
             ("model", "epochs", "cycles", "generations", "train_per_class", "batch_size",
              "eval_batch_size", "num_devices", "xla_flags")]
    workers = {}
    for _ in range(args.repeats):
        for m in methods:
            rec = (_worker(args, m) if args.in_process else
                   common.run_script("benchmarks.whole_run", [f"--method={m}", *fixed]))
            walls[m].append(rec["wall_s"])
            workers.setdefault(m, []).append(rec)
            print(f"{m:9s} {rec['wall_s']:8.1f} s ({rec['phases']} phases)", flush=True)
    med = {m: statistics.median(v) for m, v in walls.items()}
    ratios = {m: med[m] / med["baseline"] for m in methods if m != "baseline"}
    # The phases' step loops alone (no start-up, compiles outside the loop, evaluations,
    # checkpoints): what the method's extra teacher forwards cost at scale.
    loops = {m: statistics.median(sum(t or 0.0 for t in w["phase_train_wall_s"])
                                  for w in workers[m]) for m in methods}
    loop_ratios = {m: loops[m] / loops["baseline"] for m in methods if m != "baseline"}
    record = {"benchmark": "whole_run", "model": args.model, "epochs": args.epochs,
              "cycles": args.cycles, "generations": args.generations,
              "train_per_class": args.train_per_class, "batch_size": args.batch_size,
              "repeats": args.repeats, "in_process": args.in_process, "wall_s": walls, "median_wall_s": med,
              "ratio_to_baseline": ratios, "median_step_loops_s": loops,
              "step_loop_ratio_to_baseline": loop_ratios,
              "ban_ratio_per_generation": (ratios["ban"] / (args.generations + 1)
                                           if "ban" in ratios else None),
              "workers": workers, "env": common.env_info()}
    for m, r in ratios.items():
        print(f"{m} / baseline wall time = {r:.2f} (step loops alone {loop_ratios[m]:.2f})")
    return common.emit(record, args.json)


if __name__ == "__main__":
    main()
