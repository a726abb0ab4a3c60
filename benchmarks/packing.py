"""Packed seeds: N runs' train steps as one program against N separate steps.

`config.num_seeds = N` stacks N TrainStates along a run axis and trains them with the
vmapped step (`jaxkd.engine.step.make_train_step(packed=True)`) on a ('runs', 'data')
mesh (`jaxkd.engine.sharding.runs_axis_size`: gcd(N, devices) groups of devices, each
computing its own runs). The alternative is N runs, one after the other, each stepping on
the whole ('data',) mesh. Both variants run jaxkd's real train step (SGD Nesterov + weight
decay, BatchNorm, non-finite guard) on the same fixed device-resident batches, interleaved
round by round: per round, one packed step of N runs and N separate steps. Reported:
images/s summed over the runs, and the separate/packed time ratio (> 1: packing is
faster). `--runs=vmap|loop` forces how a device steps its own runs (`jax.vmap`, or one
after the other inside the program: jaxkd's choice on CPU).

    python -m benchmarks.packing --model=resnet20 --batch_size=128 --seeds=1,2,4,8
"""

from __future__ import annotations

from absl import flags

from benchmarks import common


def measure(*, model: str, batch_size: int, seeds: list[int], rounds: int, warmup: int,
            kd: bool, vectorize: str = "auto") -> dict:
    import jax
    import numpy as np
    import optax

    from jaxkd import losses, models
    from jaxkd.config import default_config
    from jaxkd.engine import packed, sharding, state as state_lib, step as step_lib

    step_lib.VECTORIZE_RUNS = {"auto": None, "vmap": True, "loop": False}[vectorize]
    cfg = default_config()
    net = models.get_model(model, num_classes=100)
    tx = state_lib.make_optimizer(cfg.optimizer, optax.constant_schedule(0.05))
    spec = losses.get("kd" if kd else "cross_entropy")
    flat = sharding.make_mesh()
    rng = np.random.default_rng(0)
    batch = {"image": rng.standard_normal((batch_size, 32, 32, 3), np.float32),
             "label": rng.integers(0, 100, batch_size).astype(np.int32)}

    def variables(i):
        return state_lib.init_variables(net, jax.random.key(i), (32, 32, 3))

    def state(i, mesh):
        return sharding.replicate(state_lib.create_train_state(net, variables(i), tx), mesh)

    def build(mesh, is_packed):
        return step_lib.make_train_step(net, spec, dict(spec.defaults), mesh=mesh,
                                        teacher_model=net if kd else None,
                                        packed=is_packed)

    separate_step = build(flat, False)
    sep_batch = jax.device_put(batch, sharding.batch_sharding(flat))
    out, runners = {}, {}
    for n in seeds:
        mesh = sharding.make_mesh(runs=sharding.runs_axis_size(n, jax.device_count()))
        one_batch = jax.device_put(batch, sharding.batch_sharding(mesh))
        stacked = {
            "state": packed.stack([state(i, mesh) for i in range(n)], mesh),
            "teacher": packed.stack([sharding.replicate(variables(100 + i), mesh)
                                     for i in range(n)], mesh) if kd else None,
            "batch": packed._stack([one_batch] * n,
                                   sharding.batch_sharding(mesh, packed=True)),
            "key": packed.stack([jax.random.key(i) for i in range(n)], mesh),
            "step": build(mesh, True)}
        separate = {"states": [state(i, flat) for i in range(n)],
                    "teachers": [sharding.replicate(variables(100 + i), flat) if kd else None
                                 for i in range(n)]}

        def packed_round(s=stacked):
            s["state"], metrics = s["step"](s["state"], s["teacher"], s["batch"], s["key"])
            return metrics

        def separate_round(s=separate, n=n):
            metrics = []
            for i in range(n):
                s["states"][i], m = separate_step(s["states"][i], s["teachers"][i],
                                                  sep_batch, jax.random.key(i))
                metrics.append(m)
            return metrics

        runners[f"packed_{n}"], runners[f"separate_{n}"] = packed_round, separate_round
        out[n] = {"mesh": dict(mesh.shape)}
    times = common.interleaved(runners, rounds=rounds, warmup=warmup)
    for n in seeds:
        p, s = times[f"packed_{n}"], times[f"separate_{n}"]
        r = common.ratio(s, p)
        out[n].update(packed=common.summarize(p, n * batch_size),
                      separate=common.summarize(s, n * batch_size),
                      speedup=r["ratio_of_medians"],
                      speedup_median_of_rounds=r["median_of_ratios"])
    return {"seeds": {str(n): v for n, v in out.items()}}


def main(argv=None) -> dict:
    fv = common.flag_values()
    flags.DEFINE_string("model", "resnet20", "model (jaxkd.models name)", flag_values=fv)
    flags.DEFINE_integer("batch_size", 128, "batch size of each run", flag_values=fv)
    flags.DEFINE_list("seeds", ["1", "2", "4", "8"], "numbers of packed runs",
                      flag_values=fv)
    flags.DEFINE_integer("rounds", 4, "timed rounds", flag_values=fv)
    flags.DEFINE_integer("warmup", 1, "untimed rounds first", flag_values=fv)
    flags.DEFINE_bool("kd", False, "KD step (a teacher per run) instead of plain CE",
                      flag_values=fv)
    flags.DEFINE_enum("runs", "auto", ["auto", "vmap", "loop"], "how a device steps its "
                      "packed runs (jaxkd.engine.step.VECTORIZE_RUNS; auto: vmap on "
                      "accelerators, a loop on CPU)", flag_values=fv)
    flags.DEFINE_integer("devices", 0, "fake CPU devices (0: leave the backend alone; "
                         "jaxkd's runs use one per core)", flag_values=fv)
    args = common.parse(fv, argv, __doc__)
    common.apply_xla_flags(args.xla_flags, device_count=args.devices)
    seeds = [int(s) for s in args.seeds]
    body = measure(model=args.model, batch_size=args.batch_size, seeds=seeds,
                   rounds=args.rounds, warmup=args.warmup, kd=args.kd, vectorize=args.runs)
    record = {"benchmark": "packing", "model": args.model, "kd": args.kd, "runs": args.runs,
              "batch_size": args.batch_size, "rounds": args.rounds, **body,
              "env": common.env_info()}
    for n, r in body["seeds"].items():
        mesh = " x ".join(f"{v} {k}" for k, v in r["mesh"].items())
        print(f"N={n:>2} ({mesh}): packed {r['packed']['items_per_s']:7.1f} img/s, "
              f"separate {r['separate']['items_per_s']:7.1f} img/s, "
              f"packed speed-up x{r['speedup']:.2f}")
    return common.emit(record, args.json)


if __name__ == "__main__":
    main()
