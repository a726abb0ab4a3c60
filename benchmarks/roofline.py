"""Roofline of a jaxkd train step on this backend: achieved vs attainable FLOP/s.

The compiled step's `cost_analysis()` gives its FLOPs and bytes accessed (XLA's count, after
fusion). The two roofs are measured on the same backend, interleaved with the step so that
a shared machine loads all three alike:

- compute roof: a square float32 (or bf16) matmul (`jnp.dot`, N = `--matmul_n`);
- memory roof: a streaming `y = 2 x + 1` over `--stream_mib` MiB (read + write, donated).

Reported: achieved GFLOP/s and GB/s of the step, its arithmetic intensity, the roofline bound
`max(flops / peak, bytes / bandwidth)` and the fraction of that bound the step reaches
(`bound_s / measured_s`, 1.0 = at the roof).

    python -m benchmarks.roofline --model=resnet20 --batch_size=128
"""

from __future__ import annotations

from absl import flags

from benchmarks import common


def _probes(matmul_n: int, stream_mib: int, dtype: str):
    import jax
    import jax.numpy as jnp

    dt = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32
    key = jax.random.key(0)
    a = jax.random.normal(key, (matmul_n, matmul_n), dt)
    b = jax.random.normal(jax.random.fold_in(key, 1), (matmul_n, matmul_n), dt)
    matmul = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=dt))
    n = stream_mib * 2**20 // 4
    state = {"x": jnp.ones((n,), jnp.float32)}
    stream = jax.jit(lambda x: x * 2.0 + 1.0, donate_argnums=0)

    def run_matmul():
        return matmul(a, b)

    def run_stream():
        state["x"] = stream(state["x"])
        return state["x"]

    return run_matmul, 2.0 * matmul_n**3, run_stream, 2.0 * n * 4


def measure(*, model: str, batch_size: int, kd: bool, rounds: int, warmup: int,
            dtype: str, matmul_n: int, stream_mib: int, conv: str = "xla") -> dict:
    """Times the step and the two roofs interleaved; returns the record's body."""
    from benchmarks import harness

    step = harness.build_step(model=model, kd=kd, batch_size=batch_size, dtype=dtype,
                              conv=conv)
    cost = common.cost_analysis(step.compiled)
    run_matmul, matmul_flops, run_stream, stream_bytes = _probes(matmul_n, stream_mib, dtype)
    times = common.interleaved({"step": step, "matmul": run_matmul, "stream": run_stream},
                               rounds=rounds, warmup=warmup)
    t_step = common.summarize(times["step"])["median_s"]
    # The roofs: best observed rate (the machine is shared; the minimum time is the
    # closest to what the hardware can do).
    peak_flops = matmul_flops / min(times["matmul"])
    bandwidth = stream_bytes / min(times["stream"])
    peak_flops_median = matmul_flops / common.summarize(times["matmul"])["median_s"]
    bandwidth_median = stream_bytes / common.summarize(times["stream"])["median_s"]
    flops, nbytes = cost.get("flops", 0.0), cost.get("bytes_accessed", 0.0)
    bound = max(flops / peak_flops, nbytes / bandwidth)
    bound_median = max(flops / peak_flops_median, nbytes / bandwidth_median)
    return {
        "step_median_s": t_step, "images_per_s": batch_size / t_step,
        "flops_per_step": flops, "bytes_per_step": nbytes,
        "arithmetic_intensity": flops / nbytes if nbytes else None,
        "achieved_gflops": flops / t_step / 1e9, "achieved_gbps": nbytes / t_step / 1e9,
        "peak_matmul_gflops": peak_flops / 1e9, "stream_gbps": bandwidth / 1e9,
        "peak_matmul_gflops_median": peak_flops_median / 1e9,
        "stream_gbps_median": bandwidth_median / 1e9,
        "ridge_flops_per_byte": peak_flops / bandwidth,
        "bound": "compute" if flops / peak_flops >= nbytes / bandwidth else "memory",
        "bound_s": bound, "fraction_of_bound": bound / t_step,
        "fraction_of_bound_vs_median_roofs": bound_median / t_step,
        "fraction_of_matmul_peak": flops / t_step / peak_flops,
    }


def main(argv=None) -> dict:
    fv = common.flag_values()
    flags.DEFINE_string("model", "resnet20", "model (jaxkd.models name)", flag_values=fv)
    flags.DEFINE_integer("batch_size", 32, "batch size", flag_values=fv)
    flags.DEFINE_bool("plain", False, "plain CE step instead of KD", flag_values=fv)
    flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "activations dtype",
                      flag_values=fv)
    flags.DEFINE_integer("rounds", 5, "timed rounds", flag_values=fv)
    flags.DEFINE_integer("warmup", 1, "untimed rounds first", flag_values=fv)
    flags.DEFINE_integer("matmul_n", 1024, "side of the probe matmul", flag_values=fv)
    flags.DEFINE_integer("stream_mib", 128, "size of the stream probe", flag_values=fv)
    flags.DEFINE_string("conv", "xla", "benchmarks.conv_impl implementation",
                        flag_values=fv)
    args = common.parse(fv, argv, __doc__)
    common.apply_xla_flags(args.xla_flags)
    body = measure(model=args.model, batch_size=args.batch_size, kd=not args.plain,
                   rounds=args.rounds, warmup=args.warmup, dtype=args.dtype,
                   matmul_n=args.matmul_n, stream_mib=args.stream_mib, conv=args.conv)
    record = {"benchmark": "roofline", "model": args.model, "batch_size": args.batch_size,
              "kd": not args.plain, "dtype": args.dtype, **body, "env": common.env_info()}
    print(f"step {body['images_per_s']:.1f} images/s, {body['flops_per_step'] / 1e9:.2f} GFLOP, "
          f"{body['bytes_per_step'] / 1e9:.2f} GB per step "
          f"(intensity {body['arithmetic_intensity']:.1f} FLOP/B)")
    print(f"achieved {body['achieved_gflops']:.1f} GFLOP/s, {body['achieved_gbps']:.1f} GB/s; "
          f"roofs: matmul {body['peak_matmul_gflops']:.1f} GFLOP/s, stream "
          f"{body['stream_gbps']:.1f} GB/s -> {body['bound']}-bound, "
          f"{100 * body['fraction_of_bound']:.1f}% of the bound")
    return common.emit(record, args.json)


if __name__ == "__main__":
    main()
