"""Cost of the device-resident data pipeline: real batches vs pre-placed random batches.

Three things are timed interleaved, one of each per round, after warm-up:

- `preplaced`: the jaxkd KD train step on one batch already on the device (no input work);
- `pipeline`: the same step fed by `jaxkd.data.make_pipeline(...).train_batches`, i.e. the
  real loop: host indices of the epoch's permutation -> device gather of uint8 images ->
  pad-4 crop + flip with per-example keys -> normalise -> step;
- `batch_only`: producing one pipeline batch (gather + augment), blocked on.

The overhead is `pipeline / preplaced - 1` (target < 5%). Data: the bundled CIFAR-10
sample (2,500 train images), so nothing is downloaded.

    python -m benchmarks.data_pipeline --model=resnet20 --batch_size=128 --rounds=10
"""

from __future__ import annotations

import itertools

from absl import flags

from benchmarks import common


def _batches(pipeline):
    for epoch in itertools.count():
        yield from pipeline.train_batches(epoch)


def measure(*, model: str, batch_size: int, rounds: int, warmup: int, kd: bool = True,
            num_devices: int = 1) -> dict:
    from benchmarks import harness
    from jaxkd import data
    from jaxkd.config import default_config
    from jaxkd.engine import sharding

    cfg = default_config()
    splits = data.load_splits(cfg.data, seed=0)
    mesh = sharding.make_mesh(num_devices)
    pipeline = data.make_pipeline(splits, mesh=mesh, batch_size=batch_size,
                                  eval_batch_size=batch_size, augment_cfg=cfg.data.augment,
                                  seed=0)
    pre = harness.build_step(model=model, kd=kd, batch_size=batch_size,
                             num_classes=splits.num_classes, num_devices=num_devices,
                             name="preplaced")
    fed = harness.build_step(model=model, kd=kd, batch_size=batch_size,
                             num_classes=splits.num_classes, num_devices=num_devices,
                             name="pipeline")
    stream = _batches(pipeline)
    side = _batches(pipeline)

    def run_pipeline():
        fed.batch = next(stream)
        return fed()

    def run_batch_only():
        return next(side)

    times = common.interleaved({"preplaced": pre, "pipeline": run_pipeline,
                                "batch_only": run_batch_only}, rounds=rounds, warmup=warmup)
    r = common.ratio(times["pipeline"], times["preplaced"])
    return {"variants": {n: common.summarize(t, batch_size) for n, t in times.items()},
            "overhead": r["ratio_of_medians"] - 1.0,
            "overhead_median_of_rounds": r["median_of_ratios"] - 1.0,
            "batch_share_of_step": common.summarize(times["batch_only"])["median_s"] /
            common.summarize(times["preplaced"])["median_s"],
            "target_overhead": 0.05,
            "meets_target": r["ratio_of_medians"] - 1.0 < 0.05,
            "train_examples": len(splits.train), "steps_per_epoch": pipeline.steps_per_epoch}


def main(argv=None) -> dict:
    fv = common.flag_values()
    flags.DEFINE_string("model", "resnet20", "model (jaxkd.models name)", flag_values=fv)
    flags.DEFINE_integer("batch_size", 64, "batch size", flag_values=fv)
    flags.DEFINE_integer("rounds", 8, "timed rounds", flag_values=fv)
    flags.DEFINE_integer("warmup", 2, "untimed rounds first", flag_values=fv)
    flags.DEFINE_bool("plain", False, "plain CE step instead of KD", flag_values=fv)
    flags.DEFINE_integer("num_devices", 1, "mesh size (0: all devices)", flag_values=fv)
    args = common.parse(fv, argv, __doc__)
    common.apply_xla_flags(args.xla_flags)
    body = measure(model=args.model, batch_size=args.batch_size, rounds=args.rounds,
                   warmup=args.warmup, kd=not args.plain, num_devices=args.num_devices)
    record = {"benchmark": "data_pipeline", "model": args.model, "kd": not args.plain,
              "batch_size": args.batch_size, "rounds": args.rounds, **body,
              "env": common.env_info()}
    for name, s in body["variants"].items():
        print(f"{name:10s} {s['median_s'] * 1e3:9.1f} ms  ({s['items_per_s']:.1f} images/s)")
    print(f"pipeline overhead {100 * body['overhead']:+.1f}% (target < 5%); one batch alone "
          f"is {100 * body['batch_share_of_step']:.1f}% of a step")
    return common.emit(record, args.json)


if __name__ == "__main__":
    main()
