"""Data-parallel step on 1, 2, 4, 8 fake CPU devices: same global batch, same numbers?

Each device count runs in its own process (`XLA_FLAGS=--xla_force_host_platform_device_count
=N`), builds the same KD step (same seeds, same global batch split `P('data')` over an
N-device mesh), runs `--steps` steps and reports the losses and a parameter checksum, plus
the median step time. Fake devices share this host's cores, so this measures correctness
(the sharded program computes the same update as one device, up to float reassociation)
and the partitioning overhead. Up to one device per core it is also a speed-up, because
XLA's CPU step alone leaves cores idle (`jaxkd.engine.sharding.split_host_cpu`, which the
CLI applies); real accelerator scaling needs real devices.

    python -m benchmarks.scaling --devices=1,2,4,8 --model=resnet8 --batch_size=64
"""

from __future__ import annotations

import statistics
import time

from absl import flags

from benchmarks import common


def _worker(args, devices: int = 0) -> dict:
    devices = devices or args.worker_devices
    if not args.in_process:
        common.apply_xla_flags(args.xla_flags, device_count=devices)
    import jax
    import numpy as np

    from benchmarks import harness

    runner = harness.build_step(model=args.model, kd=True, batch_size=args.batch_size,
                                num_devices=devices)
    losses, times = [], []
    for _ in range(args.steps):
        start = time.perf_counter()
        _, metrics = common.block(runner())
        times.append(time.perf_counter() - start)
        losses.append(float(metrics["loss"]))
    params = jax.device_get(runner.state.params)
    checksum = float(sum(np.abs(np.asarray(x, np.float64)).sum()
                         for x in jax.tree_util.tree_leaves(params)))
    return {"benchmark": "scaling_worker", "devices": len(jax.devices()),
            "mesh_devices": devices, "compile_s": runner.compile_s,
            "step_s": times, "median_step_s": statistics.median(times[1:] or times),
            "param_abs_sum": checksum, "losses": losses, "loss_after": losses[-1]}


def main(argv=None) -> dict:
    fv = common.flag_values()
    flags.DEFINE_string("devices", "1,2,4,8", "device counts to compare", flag_values=fv)
    flags.DEFINE_string("model", "resnet8", "model (jaxkd.models name)", flag_values=fv)
    flags.DEFINE_integer("batch_size", 64, "global batch", flag_values=fv)
    flags.DEFINE_integer("steps", 4, "steps per device count", flag_values=fv)
    flags.DEFINE_integer("repeats", 1, "alternating repetitions", flag_values=fv)
    flags.DEFINE_bool("in_process", False, "use this process's devices (meshes over the "
                      "first N) instead of one process per count; needs at least "
                      "max(--devices) devices", flag_values=fv)
    flags.DEFINE_integer("worker_devices", 0, "run one worker with this many devices (what "
                         "each count runs)", flag_values=fv, module_name=common.HIDDEN)
    args = common.parse(fv, argv, __doc__)
    if args.worker_devices:
        return common.emit(_worker(args), args.json)
    counts = [int(n) for n in args.devices.split(",")]
    for n in counts:
        if args.batch_size % n:
            raise SystemExit(f"--batch_size={args.batch_size} is not divisible by {n} devices")
    runs: dict[int, list[dict]] = {n: [] for n in counts}
    for _ in range(args.repeats):
        for n in counts:
            rec = _worker(args, n) if args.in_process else common.run_script(
                "benchmarks.scaling", [f"--worker_devices={n}", f"--model={args.model}",
                                       f"--batch_size={args.batch_size}",
                                       f"--steps={args.steps}",
                                       f"--xla_flags={args.xla_flags}"])
            runs[n].append(rec)
            print(f"{n} devices: {rec['median_step_s'] * 1e3:8.1f} ms/step, loss after "
                  f"{rec['loss_after']:.6f}, |params| {rec['param_abs_sum']:.6f}", flush=True)
    ref = runs[counts[0]][0]
    rows = []
    for n in counts:
        rec = runs[n][0]
        med = statistics.median(r["median_step_s"] for r in runs[n])
        rows.append({
            "devices": n, "median_step_s": med,
            "time_vs_first": med / statistics.median(r["median_step_s"]
                                                     for r in runs[counts[0]]),
            "loss_after": rec["loss_after"],
            "loss_abs_diff_vs_first": max(abs(a - b) for a, b in
                                          zip(rec["losses"], ref["losses"])),
            "param_abs_sum_rel_diff_vs_first":
                abs(rec["param_abs_sum"] - ref["param_abs_sum"]) / ref["param_abs_sum"],
            "compile_s": rec["compile_s"]})
    record = {"benchmark": "scaling", "model": args.model, "batch_size": args.batch_size,
              "steps": args.steps, "in_process": args.in_process, "rows": rows,
              "max_loss_abs_diff": max(r["loss_abs_diff_vs_first"] for r in rows),
              "max_param_rel_diff": max(r["param_abs_sum_rel_diff_vs_first"] for r in rows),
              "env": common.env_info()}
    return common.emit(record, args.json)


if __name__ == "__main__":
    main()
