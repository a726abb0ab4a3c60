"""Steps per second: k train steps in one compiled call against one call per step.

Both variants run the real loop of `jaxkd.engine.loop` on the real device pipeline (the
bundled CIFAR-10 sample, pad-4 crop + flip on the device):

- `per_step`: `config.steps_per_call = 1` — for each step the host builds the step's
  index batch, transfers it, dispatches the batch program and the jitted train step;
- `chunk`: `config.steps_per_call = k` — one call of `make_train_chunk`, a `lax.scan` of
  the same step over k steps whose batches are made inside the program from the epoch's
  permutation (one transfer per epoch).

Timed interleaved, k steps per round each, after warm-up (compiles). The speed-up is what
Python dispatch and host-side index building cost the per-step loop; it grows with the
accelerator's speed (a ResNet-20 step on an H200 is well under a millisecond) and is small
where the step itself dominates (2 CPU cores).

    python -m benchmarks.compiled_chunks --model=resnet8 --batch_size=32 --steps=16
"""

from __future__ import annotations

import itertools

import numpy as np
from absl import flags

from benchmarks import common


def measure(*, model: str, batch_size: int, steps: int, rounds: int, warmup: int,
            kd: bool, num_devices: int = 1) -> dict:
    import jax
    import optax

    from jaxkd import data, losses, models
    from jaxkd.config import default_config
    from jaxkd.engine import sharding, state as state_lib, step as step_lib

    cfg = default_config()
    splits = data.load_splits(cfg.data, seed=0)
    mesh = sharding.make_mesh(num_devices)
    pipeline = data.make_pipeline(splits, mesh=mesh, batch_size=batch_size,
                                  eval_batch_size=batch_size, augment_cfg=cfg.data.augment,
                                  seed=0)
    steps = min(steps, pipeline.steps_per_epoch)
    net = models.get_model(model, num_classes=splits.num_classes)
    tx = state_lib.make_optimizer(cfg.optimizer, optax.constant_schedule(0.05))
    teacher_vars = None
    if kd:
        teacher_vars = sharding.replicate(state_lib.init_variables(
            net, jax.random.key(1), splits.image_shape), mesh)
    spec = losses.get("kd" if kd else "cross_entropy")
    common_args = dict(mesh=mesh, teacher_model=net if kd else None)
    one = step_lib.make_train_step(net, spec, dict(spec.defaults), **common_args)
    chunk = step_lib.make_train_chunk(net, spec, dict(spec.defaults),
                                      batch_at=pipeline.batch_at, **common_args)
    key = jax.random.key(0)

    def fresh():
        variables = state_lib.init_variables(net, jax.random.key(0), splits.image_shape)
        return sharding.replicate(state_lib.create_train_state(net, variables, tx), mesh)

    states = {"per_step": fresh(), "chunk": fresh()}
    epochs = itertools.count()

    def per_step():
        epoch = next(epochs)
        state, out = states["per_step"], None
        for batch in itertools.islice(pipeline.train_batches(epoch), steps):
            state, out = one(state, teacher_vars, batch, key)
        states["per_step"] = state
        return out

    def chunked():
        epoch = next(epochs)
        inputs = pipeline.train_inputs(epoch)
        states["chunk"], out = chunk(states["chunk"], teacher_vars, inputs, epoch,
                                     np.arange(steps, dtype=np.int32), key)
        return out

    times = common.interleaved({"per_step": per_step, "chunk": chunked}, rounds=rounds,
                               warmup=warmup)
    r = common.ratio(times["per_step"], times["chunk"])
    return {"variants": {n: dict(common.summarize(t, steps), steps_per_call=steps)
                         for n, t in times.items()},
            "speedup": r["ratio_of_medians"], "speedup_median_of_rounds": r["median_of_ratios"],
            "steps": steps}


def main(argv=None) -> dict:
    fv = common.flag_values()
    flags.DEFINE_string("model", "resnet8", "model (jaxkd.models name)", flag_values=fv)
    flags.DEFINE_integer("batch_size", 32, "batch size", flag_values=fv)
    flags.DEFINE_integer("steps", 16, "steps per round (the chunk's k)", flag_values=fv)
    flags.DEFINE_integer("rounds", 6, "timed rounds", flag_values=fv)
    flags.DEFINE_integer("warmup", 2, "untimed rounds first", flag_values=fv)
    flags.DEFINE_bool("plain", False, "plain CE step instead of KD", flag_values=fv)
    flags.DEFINE_integer("num_devices", 1, "mesh size (0: all devices)", flag_values=fv)
    args = common.parse(fv, argv, __doc__)
    common.apply_xla_flags(args.xla_flags)
    body = measure(model=args.model, batch_size=args.batch_size, steps=args.steps,
                   rounds=args.rounds, warmup=args.warmup, kd=not args.plain,
                   num_devices=args.num_devices)
    record = {"benchmark": "compiled_chunks", "model": args.model, "kd": not args.plain,
              "batch_size": args.batch_size, "rounds": args.rounds, **body,
              "env": common.env_info()}
    for name, s in body["variants"].items():
        print(f"{name:9s} {s['median_s'] * 1e3:9.1f} ms per {body['steps']} steps  "
              f"({s['items_per_s']:.1f} steps/s)")
    print(f"chunk speed-up x{body['speedup']:.2f} (median of rounds "
          f"x{body['speedup_median_of_rounds']:.2f})")
    return common.emit(record, args.json)


if __name__ == "__main__":
    main()
