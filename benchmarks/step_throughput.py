"""Plain vs KD train-step throughput of jaxkd, timed interleaved in one process.

Both steps are `jaxkd.engine.step.make_train_step` programs (see `benchmarks.harness`):
the plain step trains the student with cross-entropy; the KD step also runs the teacher
forward (inference mode) and the `kd` loss. Reported per step: images/s (median over
interleaved rounds after warm-up, every step blocked on), compile time, XLA's memory
estimate of the compiled program, the device's peak memory where the backend reports it
(`device.memory_stats()`: GPUs/TPUs; the CPU backend reports nothing, so the host's peak
RSS is given instead) and the KD/plain time ratio (target <= 1.40 for a teacher of the
student's size).

    python -m benchmarks.step_throughput --model=resnet20 --batch_size=128 --rounds=10
    python -m benchmarks.step_throughput --model=resnet56 --dtype=bfloat16 --batch_size=512
"""

from __future__ import annotations

from absl import flags

from benchmarks import common


def measure(*, model: str, teacher: str, batch_size: int, rounds: int, warmup: int,
            dtype: str, conv: str = "xla", num_devices: int = 1,
            num_classes: int = 10, image_size: int = 32) -> dict:
    """Builds, compiles and times the plain and KD steps; returns the record's body."""
    from benchmarks import harness

    common_kw = dict(model=model, batch_size=batch_size, dtype=dtype, conv=conv,
                     num_devices=num_devices, num_classes=num_classes,
                     image_size=image_size)
    plain = harness.build_step(kd=False, name="plain", **common_kw)
    kd = harness.build_step(kd=True, teacher=teacher, name="kd", **common_kw)
    mem_before = common.device_memory()
    times = common.interleaved({"plain": plain, "kd": kd}, rounds=rounds, warmup=warmup)
    steps = {}
    for name, runner in (("plain", plain), ("kd", kd)):
        steps[name] = {**common.summarize(times[name], batch_size),
                       "compile_s": runner.compile_s, "trace_lower_s": runner.lower_s,
                       "program_memory": common.compiled_memory(runner.compiled),
                       "cost": common.cost_analysis(runner.compiled)}
    r = common.ratio(times["kd"], times["plain"])
    return {"steps": steps, "kd_over_plain_time": r["ratio_of_medians"],
            "kd_over_plain_median_of_rounds": r["median_of_ratios"],
            "target_kd_over_plain": 1.40,
            "meets_target": r["ratio_of_medians"] <= 1.40,
            "device_memory": common.device_memory() or None,
            "device_memory_before_timing": mem_before,
            "host_peak_rss_bytes": common.host_peak_rss_bytes()}


def main(argv=None) -> dict:
    fv = common.flag_values()
    flags.DEFINE_string("model", "resnet20", "student (jaxkd.models name)", flag_values=fv)
    flags.DEFINE_string("teacher", "", "teacher model (default: the student's)",
                        flag_values=fv)
    flags.DEFINE_integer("batch_size", 32, "batch size", flag_values=fv)
    flags.DEFINE_integer("rounds", 5, "timed rounds (one step of each)", flag_values=fv)
    flags.DEFINE_integer("warmup", 2, "untimed rounds after compiling", flag_values=fv)
    flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "activations dtype",
                      flag_values=fv)
    flags.DEFINE_string("conv", "xla", "benchmarks.conv_impl implementation",
                        flag_values=fv)
    flags.DEFINE_integer("num_devices", 1, "mesh size (0: all devices)", flag_values=fv)
    flags.DEFINE_integer("num_classes", 10, "classes of the model's head", flag_values=fv)
    flags.DEFINE_integer("image_size", 32, "image side in pixels", flag_values=fv)
    args = common.parse(fv, argv, __doc__)
    common.apply_xla_flags(args.xla_flags)
    body = measure(model=args.model, teacher=args.teacher, batch_size=args.batch_size,
                   rounds=args.rounds, warmup=args.warmup, dtype=args.dtype, conv=args.conv,
                   num_devices=args.num_devices, num_classes=args.num_classes,
                   image_size=args.image_size)
    record = {"benchmark": "step_throughput", "model": args.model,
              "teacher": args.teacher or args.model, "batch_size": args.batch_size,
              "dtype": args.dtype, "conv": args.conv, "rounds": args.rounds, **body,
              "env": common.env_info()}
    for name in ("plain", "kd"):
        s = body["steps"][name]
        print(f"{name:6s} {s['items_per_s']:9.1f} images/s  median {s['median_s'] * 1e3:8.1f} ms"
              f"  compile {s['compile_s']:6.1f} s")
    print(f"KD/plain time ratio {body['kd_over_plain_time']:.2f} (target <= 1.40)")
    return common.emit(record, args.json)


if __name__ == "__main__":
    main()
