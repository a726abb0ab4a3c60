"""The benchmark suites: every script in a fresh process, one table, one JSON file.

    python -m benchmarks.run --suite=cpu            # ~10 min on 2 idle CPU cores
    python -m benchmarks.run --suite=gpu            # one GPU (bf16, large batches)
    python -m benchmarks.run --suite=lease --budget_s=170   # a short GPU lease, first
    python -m benchmarks.run --suite=smoke          # seconds: every script at its smallest
    python -m benchmarks.run --suite=cpu --only=step_throughput,roofline

Each entry is `python -m benchmarks.<script> <args>`; the exact command is printed and stored
next to its numbers, so every number in BENCHMARKS.md can be reproduced on its own. A failing
entry is reported in the table and does not stop the suite (exit status 1 at the end).
`benchmarks/model_table.py` (parameters and FLOPs of the zoo for docs/models.md) is not
a timing and runs on its own.
"""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import sys
import time
from typing import Callable

from absl import flags

from benchmarks import common

Entry = tuple[str, str, list[str], Callable[[dict], list[tuple[str, str]]]]


def _f(x, spec=".1f"):
    return format(x, spec) if isinstance(x, (int, float)) else str(x)


def _h_step(r):
    s = r["steps"]
    return [("plain images/s", _f(s["plain"]["items_per_s"])),
            ("KD images/s", _f(s["kd"]["items_per_s"])),
            ("KD/plain time (<= 1.40)", _f(r["kd_over_plain_time"], ".2f")),
            ("compile s (plain / KD)", f"{_f(s['plain']['compile_s'])} / "
                                       f"{_f(s['kd']['compile_s'])}"),
            ("program memory MiB (KD)", _f((s["kd"]["program_memory"] or {}).get(
                "program_peak_estimate_bytes", 0) / 2**20)),
            ("device peak memory", _f((r.get("device_memory") or {}).get(
                "peak_bytes_in_use", "n/a (backend reports none)")))]


def _h_torch(r):
    rows = [(f"{n} images/s", _f(s["items_per_s"])) for n, s in r["variants"].items()]
    rows += [(f"ratio {n}", _f(v["images_per_s_ratio"], ".2f"))
             for n, v in r["ratios"].items()]
    rows += [(f"{n}", "not available: " + why[:60]) for n, why in r["torch_failed"].items()]
    return rows


def _h_roofline(r):
    return [("step GFLOP / GB", f"{r['flops_per_step'] / 1e9:.2f} / "
                                f"{r['bytes_per_step'] / 1e9:.2f}"),
            ("achieved GFLOP/s", _f(r["achieved_gflops"])),
            ("matmul peak GFLOP/s", _f(r["peak_matmul_gflops"])),
            ("stream GB/s", _f(r["stream_gbps"])),
            ("fraction of roofline bound", _f(r["fraction_of_bound"], ".3f")),
            ("bound", r["bound"])]


def _h_whole(r):
    rows = [(f"{m} wall s", _f(v)) for m, v in r["median_wall_s"].items()]
    rows += [(f"{m}/baseline", _f(v, ".2f")) for m, v in r["ratio_to_baseline"].items()]
    rows += [(f"{m}/baseline, step loops alone", _f(v, ".2f"))
             for m, v in r.get("step_loop_ratio_to_baseline", {}).items()]
    return rows


def _h_data(r):
    return [("pre-placed step ms", _f(r["variants"]["preplaced"]["median_s"] * 1e3)),
            ("pipeline step ms", _f(r["variants"]["pipeline"]["median_s"] * 1e3)),
            ("overhead (< 5%)", f"{100 * r['overhead']:+.1f}%"),
            ("batch alone / step", f"{100 * r['batch_share_of_step']:.1f}%")]


def _h_chunks(r):
    v = r["variants"]
    return [(f"{r['steps']} steps, one call each, ms", _f(v["per_step"]["median_s"] * 1e3)),
            (f"{r['steps']} steps in one call, ms", _f(v["chunk"]["median_s"] * 1e3)),
            ("chunk speed-up", f"x{r['speedup']:.2f}")]


def _h_packing(r):
    return [(f"N={n} packed / separate img/s ({' x '.join(map(str, x['mesh'].values()))})",
             f"{x['packed']['items_per_s']:.0f} / {x['separate']['items_per_s']:.0f} "
             f"(x{x['speedup']:.2f})") for n, x in r["seeds"].items()]


def _h_scaling(r):
    rows = [(f"{x['devices']} dev ms/step (x vs 1)",
             f"{x['median_step_s'] * 1e3:.1f} ({x['time_vs_first']:.2f})") for x in r["rows"]]
    rows += [("max |loss diff| vs 1 device", f"{r['max_loss_abs_diff']:.2e}"),
             ("max rel |params| diff", f"{r['max_param_rel_diff']:.2e}")]
    return rows


def _h_gap(r):
    return [(f"{x['attempt']}/{x['conv']}", f"{_f(x.get('jaxkd_over_torch_cl'), '.2f')}"
             + (f" ({x['error'][:50]})" if x.get("error") else "")) for x in r["rows"]]


def _h_profile(r):
    return [(f"{k} ms/step", _f(v)) for k, v in r["by_kind"].items() if v >= 1.0]


def _h_digests(r):
    return [("save ms (no manifest)", _f(r["variants"]["save"]["median_s"] * 1e3)),
            ("save ms (with manifest)", _f(r["variants"]["save_digests"]["median_s"] * 1e3)),
            ("save with / without", _f(r["save_ratio"], ".3f")),
            ("restore verified / unverified", _f(r["restore_ratio"], ".3f")),
            ("manifest alone ms", _f(r["variants"]["manifest"]["median_s"] * 1e3))]


def _h_generic(r):
    return [(k, _f(v)) for k, v in r.items() if isinstance(v, (int, float))][:8]


def cpu_suite() -> list[Entry]:
    b = "--batch_size=128"
    return [
        ("step_throughput", "benchmarks.step_throughput",
         ["--model=resnet20", b, "--rounds=7", "--warmup=2"], _h_step),
        ("torch_reference", "benchmarks.torch_reference",
         ["--model=resnet20", b, "--rounds=5", "--warmup=2",
          "--modes=eager,channels_last,compile", "--conv=plain,xla", "--num_devices=1,2"],
         _h_torch),
        ("roofline", "benchmarks.roofline", ["--model=resnet20", b, "--rounds=5"],
         _h_roofline),
        ("data_pipeline", "benchmarks.data_pipeline",
         ["--model=resnet20", b, "--rounds=8"], _h_data),
        ("compiled_chunks", "benchmarks.compiled_chunks",
         ["--model=resnet8", "--batch_size=32", "--steps=8", "--rounds=4", "--plain"],
         _h_chunks),
        ("whole_run", "benchmarks.whole_run",
         ["--model=resnet8", "--epochs=4", "--cycles=4", "--generations=1",
          "--train_per_class=0", "--batch_size=100"], _h_whole),
        ("packing", "benchmarks.packing",
         ["--model=resnet20", "--batch_size=128", "--seeds=1,2,4,8", "--devices=2"],
         _h_packing),
        ("scaling", "benchmarks.scaling",
         ["--devices=1,2,4,8", "--model=resnet8", "--batch_size=64", "--steps=4"],
         _h_scaling),
        ("profile_step", "benchmarks.profile_step",
         ["--model=resnet20", "--batch_size=32", "--steps=2"], _h_profile),
        ("digests", "benchmarks.digests", ["--model=resnet20", "--rounds=15"], _h_digests),
    ]


def gpu_suite() -> list[Entry]:
    bf = "--dtype=bfloat16"
    return [
        ("step_throughput_resnet56", "benchmarks.step_throughput",
         ["--model=resnet56", "--batch_size=1024", bf, "--rounds=20", "--warmup=5"], _h_step),
        ("step_throughput_densenet_bc_190_40", "benchmarks.step_throughput",
         ["--model=densenet_bc_190_40", "--batch_size=128", bf, "--rounds=10",
          "--warmup=3"], _h_step),
        ("step_throughput_resnet50_224", "benchmarks.step_throughput",
         ["--model=resnet50", "--batch_size=256", "--image_size=224", "--num_classes=1000",
          bf, "--rounds=10", "--warmup=3"], _h_step),
        ("torch_reference_resnet56_amp", "benchmarks.torch_reference",
         ["--model=resnet56", "--batch_size=1024", bf, "--device=cuda", "--rounds=20",
          "--warmup=5", "--modes=channels_last,compile"], _h_torch),
        ("torch_reference_resnet50_224_amp", "benchmarks.torch_reference",
         ["--model=resnet50", "--batch_size=256", "--image_size=224", "--num_classes=1000",
          bf, "--device=cuda", "--rounds=10", "--warmup=3", "--modes=channels_last,compile"],
         _h_torch),
        ("roofline_resnet56", "benchmarks.roofline",
         ["--model=resnet56", "--batch_size=1024", bf, "--matmul_n=8192",
          "--stream_mib=1024", "--rounds=10"], _h_roofline),
        ("data_pipeline_resnet56", "benchmarks.data_pipeline",
         ["--model=resnet56", "--batch_size=512", "--rounds=20"], _h_data),
        ("compiled_chunks_resnet20", "benchmarks.compiled_chunks",
         ["--model=resnet20", "--batch_size=128", "--steps=39", "--rounds=10", "--plain"],
         _h_chunks),
        ("packing_resnet20", "benchmarks.packing",
         ["--model=resnet20", "--batch_size=128", "--seeds=1,2,4,8", "--rounds=10",
          "--warmup=3"], _h_packing),
        ("whole_run", "benchmarks.whole_run",
         ["--model=resnet20", "--epochs=8", "--cycles=4", "--generations=2",
          "--train_per_class=0", "--batch_size=128"], _h_whole),
    ]


def lease_suite(tiny: bool = False) -> list[Entry]:
    """What one short GPU lease measures first (`experiments/gpu`, under 3 minutes with
    `--budget_s=170`): the packed ResNet-20 steps that size the Table 3 run (plain for the
    baseline and cycle 1, KD for SD's cycles 2-4), the HBM roofline of a step, the compiled
    chunk against the per-step loop, the bf16 step and PyTorch's AMP step; most needed first.
    `tiny` (suite `lease_rehearsal`): the same entries and flags at CPU-rehearsal size."""
    bf = "--dtype=bfloat16"
    small, large = (["--model=resnet8", "--batch_size=8"],) * 2 if tiny else (
        ["--model=resnet20", "--batch_size=128"], ["--model=resnet56", "--batch_size=1024"])
    rounds = ["--rounds=1", "--warmup=1"] if tiny else ["--rounds=6", "--warmup=2"]
    packing = [*small, "--seeds=1,2" if tiny else "--seeds=1,2,4,8", *rounds]
    return [
        ("packing_resnet20", "benchmarks.packing", packing, _h_packing),
        ("packing_resnet20_kd", "benchmarks.packing", [*packing, "--kd"], _h_packing),
        ("roofline_resnet56", "benchmarks.roofline",
         [*large, bf, "--matmul_n=128" if tiny else "--matmul_n=8192",
          "--stream_mib=8" if tiny else "--stream_mib=1024", rounds[0]], _h_roofline),
        ("compiled_chunks_resnet20", "benchmarks.compiled_chunks",
         [*small, "--steps=2" if tiny else "--steps=39", *rounds, "--plain"], _h_chunks),
        ("step_throughput_resnet56", "benchmarks.step_throughput", [*large, bf, *rounds],
         _h_step),
        ("torch_reference_resnet56_amp", "benchmarks.torch_reference",
         [*large, bf, "--device=cpu" if tiny else "--device=cuda", *rounds,
          "--modes=channels_last"], _h_torch),
    ]


def smoke_suite() -> list[Entry]:
    tiny = ["--model=resnet8", "--batch_size=8"]
    return [
        ("step_throughput", "benchmarks.step_throughput",
         [*tiny, "--rounds=2", "--warmup=1"], _h_step),
        ("torch_reference", "benchmarks.torch_reference",
         [*tiny, "--rounds=2", "--warmup=1", "--modes=eager,channels_last"], _h_torch),
        ("roofline", "benchmarks.roofline",
         [*tiny, "--rounds=2", "--matmul_n=128", "--stream_mib=8"], _h_roofline),
        ("data_pipeline", "benchmarks.data_pipeline", [*tiny, "--rounds=2", "--warmup=1"],
         _h_data),
        ("compiled_chunks", "benchmarks.compiled_chunks",
         [*tiny, "--steps=2", "--rounds=2", "--warmup=1", "--plain"], _h_chunks),
        ("packing", "benchmarks.packing", [*tiny, "--seeds=1,2", "--rounds=1", "--warmup=1"],
         _h_packing),
        ("whole_run", "benchmarks.whole_run",
         ["--model=resnet8", "--epochs=4", "--cycles=4", "--generations=1",
          "--train_per_class=2", "--batch_size=10", "--eval_batch_size=500"], _h_whole),
        ("scaling", "benchmarks.scaling",
         ["--devices=1,2", "--model=resnet8", "--batch_size=8", "--steps=2"], _h_scaling),
        ("digests", "benchmarks.digests", ["--model=resnet8", "--rounds=2", "--warmup=1"],
         _h_digests),
    ]


SUITES = {"cpu": cpu_suite, "gpu": gpu_suite, "lease": lease_suite,
          "lease_rehearsal": lambda: lease_suite(tiny=True), "smoke": smoke_suite}


def _needs_torch(module: str) -> bool:
    return module in ("benchmarks.torch_reference", "benchmarks.cpu_gap")


def run_suite(name: str, *, only: list[str], json_dir: pathlib.Path,
              timeout: float, budget: float = 0.0) -> dict:
    """Runs the entries one by one; with `budget` > 0 (seconds) an entry that would start
    after the budget is spent is skipped, and each entry's timeout is what is left."""
    entries = SUITES[name]()
    if only:
        entries = [e for e in entries if e[0] in only]
    from benchmarks.torch_reference import torch_available

    results, suite_start = {}, time.perf_counter()
    for label, module, args, headline in entries:
        command = " ".join(["python", "-m", module, *map(shlex.quote, args)])
        print(f"\n$ {command}", flush=True)
        left = budget - (time.perf_counter() - suite_start) if budget else timeout
        if left <= 0:
            results[label] = {"command": command, "skipped": f"the {budget:.0f} s budget "
                                                             f"of --budget_s was spent"}
            print(f"  skipped: {results[label]['skipped']}", flush=True)
            continue
        if _needs_torch(module) and not torch_available():
            results[label] = {"command": command, "skipped": "torch is not installed"}
            print("  skipped: torch is not installed", flush=True)
            continue
        out = json_dir / f"{label}.json"
        start = time.perf_counter()
        try:
            record = common.run_script(module, [*args, f"--json={out}"],
                                       timeout=min(timeout, left))
            rows = headline(record)
            results[label] = {"command": command, "seconds": time.perf_counter() - start,
                              "headline": rows, "record": record}
        except Exception as err:  # noqa: BLE001 - report and go on
            results[label] = {"command": command, "seconds": time.perf_counter() - start,
                              "error": str(err)[-1500:]}
            rows = [("error", str(err).strip().splitlines()[-1][:100] if str(err) else "?")]
        for key, value in rows:
            print(f"  {key:40s} {value}", flush=True)
    return results


def print_table(results: dict) -> None:
    print("\n| benchmark | metric | value |\n|---|---|---|")
    for label, res in results.items():
        rows = res.get("headline") or [("skipped" if "skipped" in res else "error",
                                        res.get("skipped") or res.get("error", "")[-100:])]
        for key, value in rows:
            print(f"| {label} | {key} | {value} |")
    print("\nCommands:")
    for label, res in results.items():
        secs = f" ({res['seconds']:.0f} s)" if "seconds" in res else ""
        print(f"  {label}{secs}: {res['command']}")


def main(argv=None) -> int:
    fv = common.flag_values()
    flags.DEFINE_enum("suite", "cpu", sorted(SUITES), "which suite to run", flag_values=fv)
    flags.DEFINE_string("only", "", "comma-separated entry names", flag_values=fv)
    flags.DEFINE_string("out_dir", "", "directory for the per-entry JSON files (default "
                        "benchmarks/results/<suite>)", flag_values=fv)
    flags.DEFINE_float("timeout", 1800.0, "seconds per entry", flag_values=fv)
    flags.DEFINE_float("budget_s", 0.0, "> 0: seconds for the whole suite; entries that "
                       "would start later are skipped (a short GPU lease)", flag_values=fv)
    args = common.parse(fv, argv, __doc__)
    if args.xla_flags:
        common.apply_xla_flags(args.xla_flags)     # inherited by every entry's process
    out_dir = pathlib.Path(args.out_dir or pathlib.Path(__file__).parent / "results" /
                           args.suite)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = run_suite(args.suite, only=[o for o in args.only.split(",") if o],
                        json_dir=out_dir, timeout=args.timeout, budget=args.budget_s)
    print_table(results)
    summary = {"suite": args.suite, "seconds": time.perf_counter() - start,
               "date": time.strftime("%Y-%m-%d"), "results": results,
               "host": {"cpu_count": os.cpu_count(), "load_average_1m": os.getloadavg()[0]}}
    path = pathlib.Path(args.json) if args.json else out_dir / "suite.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    print(f"\nwrote {path} ({summary['seconds']:.0f} s)")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
