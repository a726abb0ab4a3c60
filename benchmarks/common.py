"""Shared helpers of the benchmark scripts: flags, timing, memory, environment and JSON.

Nothing here imports JAX at module level: a script first parses its flags, applies
`--xla_flags` / a fake-device count with `apply_xla_flags`, and only then builds programs.

Flags are absl flags, as jaxkd's own commands: a script's `main(argv)` takes `flag_values()`
(the flags every script shares, `--json` and `--xla_flags`), adds its own with
`flags.DEFINE_*(..., flag_values=fv)` and reads them with `parse(fv, argv, __doc__)`. A
fresh registry per call, so `main` can be called again in one process (the tests do).

Timing conventions (all scripts):
- every compared variant is warmed up (compiled and run) before any timed step;
- a timed step ends with `jax.block_until_ready` on everything the step returns;
- variants that are compared with each other are timed **interleaved** (round-robin, one
  step of each per round) in the same process, and the reported number is the median over
  rounds, so a shared, noisy machine slows all of them alike;
- ratios are reported both as ratio of medians and as the median of per-round ratios.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pathlib
import platform
import resource
import statistics
import sys
import time
import types
from typing import Any, Callable, Mapping, Sequence

from absl import flags

#: Date written into BENCHMARKS.md for the recorded numbers.
BENCH_DATE = "2026-11-22"


# -- flags and environment ------------------------------------------------------------------
def apply_xla_flags(flags: str = "", *, device_count: int = 0) -> str:
    """Appends `flags` (and a fake host-device count) to XLA_FLAGS; returns the result.

    Must run before the JAX backend starts (before the first `jax.devices()` or compile).
    An existing `--xla_force_host_platform_device_count` is replaced when `device_count`
    is given.
    """
    parts = os.environ.get("XLA_FLAGS", "").split()
    if device_count:
        parts = [p for p in parts if not p.startswith("--xla_force_host_platform_device_count")]
        parts.append(f"--xla_force_host_platform_device_count={device_count}")
    parts += (flags or "").split()
    os.environ["XLA_FLAGS"] = " ".join(parts)
    return os.environ["XLA_FLAGS"]


def env_info() -> dict:
    """Versions, device and host facts recorded with every result."""
    import jax
    import jaxlib

    devices = jax.devices()
    info = {
        "jax": jax.__version__, "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(), "device_kind": devices[0].device_kind,
        "num_devices": len(devices), "cpu_count": os.cpu_count(),
        "machine": platform.machine(), "python": platform.python_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_average_1m": _loadavg(),
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    return info


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


# -- timing ---------------------------------------------------------------------------------
def block(tree) -> Any:
    """`jax.block_until_ready` on a pytree (the step's outputs)."""
    import jax

    return jax.block_until_ready(tree)


def time_call(fn: Callable[[], Any]) -> float:
    """Seconds for one call of `fn`, blocking on what it returns."""
    start = time.perf_counter()
    block(fn())
    return time.perf_counter() - start


def interleaved(runners: Mapping[str, Callable[[], Any]], *, rounds: int,
                warmup: int = 1) -> dict[str, list[float]]:
    """Times each runner once per round, round-robin, after `warmup` untimed rounds.

    Args:
        runners: name -> zero-argument callable that runs one step and returns its outputs
            (blocked on); stateful runners keep their own state.
        rounds: timed rounds.
        warmup: untimed rounds first (compilation, caches, allocator).

    Returns:
        name -> list of per-round seconds.
    """
    for _ in range(warmup):
        for fn in runners.values():
            block(fn())
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            times[name].append(time_call(fn))
    return times


def summarize(seconds: list[float], items_per_call: int = 0) -> dict:
    """Median, quartiles and (optionally) items per second of a list of timings."""
    qs = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else [seconds[0]] * 3
    out = {"median_s": statistics.median(seconds), "q1_s": qs[0], "q3_s": qs[2],
           "min_s": min(seconds), "n": len(seconds)}
    if items_per_call:
        out["items_per_s"] = items_per_call / out["median_s"]
    return out


def ratio(num: list[float], den: list[float]) -> dict:
    """Time ratio num/den: ratio of medians and the median of per-round ratios."""
    per_round = [a / b for a, b in zip(num, den)]
    return {"ratio_of_medians": statistics.median(num) / statistics.median(den),
            "median_of_ratios": statistics.median(per_round)}


# -- memory ---------------------------------------------------------------------------------
def device_memory() -> dict | None:
    """`device.memory_stats()` of device 0 (None where the backend reports nothing, e.g. CPU)."""
    import jax

    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001 - backends differ in what they raise
        return None
    if not stats:
        return None
    keys = ("peak_bytes_in_use", "bytes_in_use", "bytes_limit")
    return {k: int(stats[k]) for k in keys if k in stats}


def compiled_memory(compiled) -> dict | None:
    """XLA's buffer assignment of a compiled program (arguments, outputs, temporaries)."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001
        return None
    if m is None:
        return None
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes",
              "alias_size_in_bytes", "generated_code_size_in_bytes")
    out = {f: int(getattr(m, f)) for f in fields if hasattr(m, f)}
    if out:
        out["program_peak_estimate_bytes"] = (out.get("argument_size_in_bytes", 0)
                                              + out.get("output_size_in_bytes", 0)
                                              + out.get("temp_size_in_bytes", 0)
                                              - out.get("alias_size_in_bytes", 0))
    return out


def host_peak_rss_bytes() -> int:
    """Peak resident memory of this process (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def cost_analysis(compiled) -> dict:
    """`flops` and `bytes accessed` of a compiled program (a dict across JAX versions)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001
        return {}
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    cost = cost or {}
    return {"flops": float(cost.get("flops", 0.0)),
            "bytes_accessed": float(cost.get("bytes accessed", 0.0)),
            "transcendentals": float(cost.get("transcendentals", 0.0))}


# -- flags and output -----------------------------------------------------------------------
#: `module_name` of a flag that `--help` leaves out: a script's own worker mode.
HIDDEN = "benchmarks (internal: the worker processes a script starts)"
HELP_FLAGS = ("--help", "-h", "-help", "--helpshort", "--helpfull")


def flag_values(*, shared: bool = True) -> flags.FlagValues:
    """A fresh absl flag registry for one run of a script; `shared`: with the flags every
    script shares (--json, --xla_flags)."""
    fv = flags.FlagValues()
    if shared:
        flags.DEFINE_string("json", "", "write the JSON record to this path (always printed "
                            "to stdout as the last line)", flag_values=fv)
        flags.DEFINE_string("xla_flags", "", "extra XLA_FLAGS for this process, e.g. "
                            "'--xla_cpu_multi_thread_eigen=false'", flag_values=fv)
    return fv


def help_text(fv: flags.FlagValues, description: str) -> str:
    """`description`, then every flag of `fv` but the `HIDDEN` ones, with its default."""
    modules = [m for m in fv.flags_by_module_dict() if m != HIDDEN]
    return description.strip() + "\n\nflags:" + "".join(fv.module_help(m) for m in modules)


def parse(fv: flags.FlagValues, argv: Sequence[str] | None, description: str, *,
          positional: bool = False) -> types.SimpleNamespace:
    """Parses a script's arguments into `fv`; returns the values as attributes.

    Args:
        fv: the script's flags (`flag_values()` plus its own).
        argv: the arguments without the program name (None: `sys.argv[1:]`).
        description: what `--help` prints above the flags (the script's docstring).
        positional: accept arguments that are not flags (then `.args`, a list; a `--`
            ends the flags); otherwise they are an error.

    `--help` prints the flags and exits 0; a bad flag prints absl's message and exits 2.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "benchmark"
    if any(a in HELP_FLAGS for a in argv):
        try:
            print(help_text(fv, description))
        except BrokenPipeError:   # `| head`
            pass
        sys.exit(0)
    try:
        rest = fv([prog, *argv])[1:]
    except flags.Error as err:
        print(f"{prog}: error: {err} (--help lists the flags)", file=sys.stderr)
        sys.exit(2)
    if rest and not positional:
        print(f"{prog}: error: unexpected arguments {rest} (--help lists the flags)",
              file=sys.stderr)
        sys.exit(2)
    values = fv.flag_values_dict()
    return types.SimpleNamespace(**values, **({"args": rest} if positional else {}))


def emit(record: dict, path: str = "") -> dict:
    """Prints the record as one JSON line (last line of stdout) and writes it to `path`."""
    text = json.dumps(record, sort_keys=True, default=_json_default)
    if path:
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(path).write_text(json.dumps(record, indent=2, sort_keys=True,
                                                 default=_json_default) + "\n")
    print(text, flush=True)
    return record


def _json_default(obj):
    try:
        return float(obj)
    except (TypeError, ValueError):
        return str(obj)


def last_json_line(text: str) -> dict:
    """The JSON record a script printed as its last JSON line."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            return json.loads(line)
    raise ValueError("no JSON record in the output:\n" + text[-2000:])


def run_script(module: str, args: list[str], *, env: Mapping[str, str] | None = None,
               timeout: float = 600) -> dict:
    """Runs `python -m module args` in a fresh process; returns its JSON record.

    A fresh process is the only way to give XLA different flags or device counts.
    """
    import subprocess

    full_env = dict(os.environ)
    full_env.update(env or {})
    root = str(pathlib.Path(__file__).resolve().parents[1])
    full_env["PYTHONPATH"] = root + os.pathsep + full_env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=root, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"python -m {module} {' '.join(args)} failed "
                           f"(exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return last_json_line(proc.stdout)


@contextlib.contextmanager
def stopwatch(out: dict, key: str):
    """Records the seconds spent in the block under out[key]."""
    start = time.perf_counter()
    yield
    out[key] = time.perf_counter() - start
