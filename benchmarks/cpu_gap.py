"""Closing the CPU gap to PyTorch (issue 8): each attempt measured against the same yardstick.

An *attempt* is a convolution implementation (`benchmarks.conv_impl`) and a set of XLA flags.
XLA flags are fixed when the backend starts, so every flag set runs in its own process
(`--worker`). Each worker times, interleaved round by round on the same batch, its jaxkd KD
steps and the PyTorch channels-last KD step of `benchmarks.torch_reference` (the yardstick),
so each attempt is reported as jaxkd/PyTorch images/s measured side by side, which is what
survives a shared, noisy machine. Conv implementations that need no flag share the baseline
process and are also compared directly with jaxkd as shipped.

    python -m benchmarks.cpu_gap --batch_size=128 --rounds=5              # every attempt
    python -m benchmarks.cpu_gap --attempts=baseline,no_ynn --cores=1     # a few, 1 core

`--cores=N` pins the workers to the first N cores (`sched_setaffinity`) and gives PyTorch N
threads; `--omp_wait_policy=PASSIVE` stops PyTorch's OpenMP threads from spinning, which
matters when other processes share the cores.
"""

from __future__ import annotations

import os
import statistics
import sys

from absl import flags

from benchmarks import common

#: name -> (conv implementations timed in that process, XLA flags[, dtype]); a bfloat16
#: attempt compares with PyTorch under CPU autocast (AMP) bfloat16, channels-last.
ATTEMPTS: dict[str, tuple] = {
    "baseline": ("xla,im2col,patches,taps,nchw,xla_bwd_im2col", ""),
    "eigen_single_thread": ("xla", "--xla_cpu_multi_thread_eigen=false"),
    "thunk_runtime_off": ("xla", "--xla_cpu_use_thunk_runtime=false"),
    "no_ynn": ("xla", "--xla_cpu_experimental_ynn_fusion_type="),
    "ynn_conv": ("xla", "--xla_cpu_experimental_ynn_fusion_type="
                        "individual_dot,individual_convolution,reduce,eltwise"),
    "xnn_conv": ("xla", "--xla_cpu_experimental_xnn_fusion_type=individual_convolution,"
                        "individual_dot"),
    "xnn_graph_greedy": ("xla", "--xla_cpu_experimental_xnn_graph_fusion_mode="
                                "XNN_GRAPH_FUSION_MODE_GREEDY"),
    "onednn": ("xla", "--xla_cpu_use_onednn=true "
                      "--xla_cpu_experimental_onednn_fusion_type=individual_convolution,"
                      "individual_dot"),
    "onednn_custom_call": ("xla", "--xla_cpu_experimental_onednn_custom_call=true"),
    "fast_math": ("xla", "--xla_cpu_enable_fast_math=true"),
    "vector_512": ("xla", "--xla_cpu_prefer_vector_width=512"),
    "no_fusion_emitters": ("xla", "--xla_cpu_use_fusion_emitters=false"),
    "concurrency_scheduler": ("xla", "--xla_cpu_enable_concurrency_optimized_scheduler=true"),
    "tiling_propagation": ("xla", "--xla_cpu_experimental_enable_tiling_propagation=true"),
    "no_xnnpack": ("xla", "--xla_cpu_use_xnnpack=false"),
    "bfloat16": ("xla", "", "bfloat16"),
    # Data parallel on the host: one CPU device per core, each running its half of the
    # batch (what `python -m jaxkd.main` does by default), with XLA's intra-op threads
    # or with each device's program on one thread.
    "split2": ("xla", "--xla_force_host_platform_device_count=2"),
    "split2_eigen1": ("xla", "--xla_force_host_platform_device_count=2 "
                             "--xla_cpu_multi_thread_eigen=false"),
}


def _worker(args) -> dict:
    if args.cores:
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:args.cores]))
    common.apply_xla_flags(args.xla_flags)
    import torch

    from benchmarks import harness, torch_reference

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    runners, failed = {}, {}
    for conv in args.convs.split(","):
        try:
            r = harness.build_step(model=args.model, batch_size=args.batch_size, conv=conv,
                                   name=f"jaxkd_{conv}", dtype=args.dtype, num_devices=0)
            runners[r.name] = r
        except Exception as err:  # noqa: BLE001 - an attempt may not compile
            failed[f"jaxkd_{conv}"] = f"{type(err).__name__}: {str(err)[:300]}"
    if args.compile_only:
        return {"benchmark": "cpu_gap_worker", "xla_flags": args.xla_flags,
                "dtype": args.dtype, "failed": failed, "variants": {}, "ratios": {},
                "compile_s": {n: r.compile_s for n, r in runners.items()},
                "program": {n: program_summary(r.compiled) for n, r in runners.items()}}
    torch_runners, tfailed = torch_reference.make_torch_steps(
        args.torch_modes.split(","), model=args.model, batch_size=args.batch_size,
        amp="bfloat16" if args.dtype == "bfloat16" else "")
    failed.update(tfailed)
    result = torch_reference.compare(runners, torch_runners, rounds=args.rounds,
                                     warmup=args.warmup, batch_size=args.batch_size)
    times = {n: v for n, v in result["variants"].items()}
    if "jaxkd_xla" in runners:
        result["vs_jaxkd_xla"] = {n: times["jaxkd_xla"]["median_s"] / times[n]["median_s"]
                                  for n in runners}
    result["compile_s"] = {n: r.compile_s for n, r in runners.items()}
    result["program"] = {n: program_summary(r.compiled) for n, r in runners.items()}
    return {"benchmark": "cpu_gap_worker", "xla_flags": args.xla_flags, "cores": args.cores,
            "dtype": args.dtype,
            "torch_threads": torch.get_num_threads(), "failed": failed, **result,
            "env": common.env_info()}


def program_summary(compiled) -> dict:
    """A fingerprint of the optimised program (metadata stripped) and what executes it.

    Two attempts with the same fingerprint run the same program: a flag that leaves it
    unchanged can only matter through the runtime (threads), not the code.
    """
    import hashlib
    import re

    text = compiled.as_text()
    # The program only: computations and instructions, without metadata (source lines)
    # and without the module's tables of Python files and stack frames.
    body = "\n".join(line for line in text.splitlines()
                     if line.lstrip().startswith(("%", "ROOT", "ENTRY", "}")))
    body = re.sub(r",? metadata=\{[^}]*\}", "", body)
    body = re.sub(r",? stack_frame_id=\d+", "", body)
    return {"fingerprint": hashlib.sha256(body.encode()).hexdigest()[:12],
            "ynn_fusions": text.count('"__ynn_fusion"'),
            "xnn_fusions": text.count('"__xnn_fusion"'),
            "onednn_fusions": text.count('"__onednn_fusion"'),
            "eigen_convolutions": len(re.findall(r"= \S+ convolution\(", text)),
            "instructions": len(re.findall(r"^\s*(?:ROOT )?%\S+ = ", text, re.M))}


def _child_env(args) -> dict:
    env = {}
    if args.omp_wait_policy:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    return env


def _worker_args(args, name: str) -> tuple[list[str], str, str, str]:
    convs, xla_flags, dtype = (*ATTEMPTS[name], "float32")[:3]
    if args.convs and name == "baseline":
        convs = args.convs
    cmd = ["--worker", f"--convs={convs}", f"--model={args.model}",
           f"--batch_size={args.batch_size}", f"--rounds={args.rounds}",
           f"--warmup={args.warmup}", f"--cores={args.cores}",
           f"--torch_modes={args.torch_modes}", f"--xla_flags={xla_flags}",
           f"--dtype={dtype}"]
    return cmd + (["--compile_only"] if args.compile_only else []), convs, xla_flags, dtype


def _rows_of(name: str, rec: dict, xla_flags: str, dtype: str,
             compile_only: bool) -> list[dict]:
    yard = "torch_channels_last"
    rows = []
    for variant in rec["program"] if compile_only else rec["variants"]:
        if not variant.startswith("jaxkd_"):
            continue
        row = {"attempt": name, "conv": variant[len("jaxkd_"):], "xla_flags": xla_flags,
               "dtype": dtype, "compile_s": rec["compile_s"].get(variant),
               "program": rec.get("program", {}).get(variant)}
        if not compile_only:
            ratio = rec["ratios"].get(f"{variant}/{yard}", {})
            row.update({
                "jaxkd_images_per_s": rec["variants"][variant]["items_per_s"],
                "torch_cl_images_per_s": rec["variants"].get(yard, {}).get("items_per_s"),
                "jaxkd_over_torch_cl": ratio.get("images_per_s_ratio"),
                "jaxkd_over_torch_cl_median_of_rounds": ratio.get("median_of_round_ratios"),
                "vs_jaxkd_xla_same_process": rec.get("vs_jaxkd_xla", {}).get(variant)})
        rows.append(row)
    return rows


def run_attempts(args) -> dict:
    """Runs every attempt `--repeats` times (alternating); one worker process each."""
    names = list(ATTEMPTS) if args.attempts == "all" else args.attempts.split(",")
    rows, records = [], {}
    for repeat in range(args.repeats):
        for name in names:
            cmd, convs, xla_flags, dtype = _worker_args(args, name)
            try:
                rec = common.run_script("benchmarks.cpu_gap", cmd, env=_child_env(args),
                                        timeout=args.timeout)
            except Exception as err:  # noqa: BLE001 - unknown flag, crash, timeout
                records.setdefault(name, []).append({"error": str(err)[-600:]})
                rows.append({"attempt": name, "conv": convs, "xla_flags": xla_flags,
                             "repeat": repeat, "error": str(err).splitlines()[-1][:200]})
                print(f"{name}: failed ({rows[-1]['error']})", flush=True)
                continue
            records.setdefault(name, []).append(rec)
            for row in _rows_of(name, rec, xla_flags, dtype, args.compile_only):
                rows.append({**row, "repeat": repeat})
                print(_fmt(row) if not args.compile_only else
                      f"{name:22s} {row['conv']:15s} {row['program']}", flush=True)
    return {"rows": rows, "summary": summarize_rows(rows), "workers": records}


def summarize_rows(rows: list[dict]) -> list[dict]:
    """Per (attempt, conv): medians over repeats of the in-process ratios."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if "error" not in r and r.get("jaxkd_over_torch_cl") is not None:
            groups.setdefault((r["attempt"], r["conv"]), []).append(r)
    out = []
    for (attempt, conv), rs in groups.items():
        def med(key):
            vals = [r[key] for r in rs if r.get(key) is not None]
            return statistics.median(vals) if vals else None
        out.append({"attempt": attempt, "conv": conv, "repeats": len(rs),
                    "xla_flags": rs[0]["xla_flags"], "dtype": rs[0]["dtype"],
                    "jaxkd_over_torch_cl": med("jaxkd_over_torch_cl"),
                    "jaxkd_over_torch_cl_median_of_rounds":
                        med("jaxkd_over_torch_cl_median_of_rounds"),
                    "per_repeat": [round(r["jaxkd_over_torch_cl"], 3) for r in rs],
                    "vs_jaxkd_xla_same_process": med("vs_jaxkd_xla_same_process"),
                    "program": rs[0].get("program")})
    return out


def _fmt(row: dict) -> str:
    def f(x, spec):
        return format(x, spec) if isinstance(x, (int, float)) else "-"
    return (f"{row['attempt']:22s} {row['conv']:15s} jaxkd {f(row['jaxkd_images_per_s'], '7.1f')}"
            f" img/s  torch-CL {f(row['torch_cl_images_per_s'], '7.1f')}  ratio "
            f"{f(row['jaxkd_over_torch_cl'], '5.2f')} (per-round median "
            f"{f(row['jaxkd_over_torch_cl_median_of_rounds'], '4.2f')})  vs shipped "
            f"{f(row['vs_jaxkd_xla_same_process'], '5.2f')}")


def main(argv=None) -> dict:
    fv = common.flag_values()
    flags.DEFINE_string("attempts", "all", "comma-separated names or 'all': "
                        f"{', '.join(ATTEMPTS)}", flag_values=fv)
    flags.DEFINE_string("convs", "", "override the baseline process's conv list",
                        flag_values=fv)
    flags.DEFINE_string("model", "resnet20", "model (jaxkd.models name)", flag_values=fv)
    flags.DEFINE_integer("batch_size", 32, "batch size", flag_values=fv)
    flags.DEFINE_integer("rounds", 4, "timed rounds", flag_values=fv)
    flags.DEFINE_integer("repeats", 1, "run the whole attempt list this many times, "
                         "alternating", flag_values=fv)
    flags.DEFINE_integer("warmup", 1, "untimed rounds first", flag_values=fv)
    flags.DEFINE_string("dtype", "float32", "(worker) activations dtype", flag_values=fv)
    flags.DEFINE_integer("cores", 0, "pin to this many cores (0: all)", flag_values=fv)
    flags.DEFINE_string("torch_modes", "channels_last", "PyTorch variants timed in every "
                        "worker (yardstick: channels_last)", flag_values=fv)
    flags.DEFINE_string("omp_wait_policy", "", "OMP_WAIT_POLICY for the workers (PASSIVE "
                        "on a shared machine)", flag_values=fv)
    flags.DEFINE_float("timeout", 1200.0, "seconds per worker", flag_values=fv)
    flags.DEFINE_bool("compile_only", False, "only compile each attempt and report its "
                      "program fingerprint (which flags change the program at all)",
                      flag_values=fv)
    flags.DEFINE_bool("worker", False, "run one worker: time the --convs in this process "
                      "(what each attempt runs)", flag_values=fv, module_name=common.HIDDEN)
    args = common.parse(fv, argv, __doc__)
    if args.worker:
        return common.emit(_worker(args), args.json)
    if not args.compile_only and not _torch_ok():
        print("torch is not installed (pip install torch==2.13.0): no yardstick",
              file=sys.stderr)
        sys.exit(2)
    out = run_attempts(args)
    record = {"benchmark": "cpu_gap", "model": args.model, "batch_size": args.batch_size,
              "rounds": args.rounds, "repeats": args.repeats, "cores": args.cores,
              "omp_wait_policy": args.omp_wait_policy, **out}
    best = max(out["summary"], key=lambda r: r["jaxkd_over_torch_cl"], default=None)
    record["best"] = best
    record["env"] = common.env_info()
    if out["summary"]:
        print(f"\n{'attempt':22s} {'conv':15s} {'jaxkd/torch-CL':>14s} {'per repeat':24s} "
              f"{'vs shipped':>10s}")
        for r in sorted(out["summary"], key=lambda r: -r["jaxkd_over_torch_cl"]):
            vs = r["vs_jaxkd_xla_same_process"]
            print(f"{r['attempt']:22s} {r['conv']:15s} {r['jaxkd_over_torch_cl']:14.2f} "
                  f"{str(r['per_repeat']):24s} {vs if vs is None else round(vs, 2)!s:>10s}")
    return common.emit(record, args.json)


def _torch_ok() -> bool:
    from benchmarks.torch_reference import torch_available

    return torch_available()


if __name__ == "__main__":
    main()
