"""Start-up time of the CLI: process start to the first train step, cold vs warm cache.

    python -m benchmarks.startup [--config=configs/quickstart.py] [--repeats=1]
    python -m benchmarks.startup -- --config.num_epochs=1    # more flags for jaxkd.main

Runs `python -m jaxkd.main` three ways, each in a fresh workdir, and stops it once the
first train step has been dispatched (the "compiled train step" log line):
  - off:  JAXKD_NO_COMPILE_CACHE=1 and no JAX_COMPILATION_CACHE_DIR (no persistent cache);
  - cold: the persistent cache on, in an empty folder (compiles and writes it);
  - warm: the same folder again (loads the programs).
For each it prints the seconds from process start to the devices line, to the phase-start
line (data loaded, state initialised) and to the first step, and the logged compile time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from absl import flags

from benchmarks import common

MARKS = {"devices": re.compile(r"devices: \["), "phase": re.compile(r"\] phase 1/\d+ "),
         "first_step": re.compile(r"compiled train step in ([\d.]+) s")}


def one(config: str, env: dict, extra: list[str]) -> dict:
    workdir = tempfile.mkdtemp(prefix="jaxkd_startup_")
    cmd = [sys.executable, "-m", "jaxkd.main", f"--config={config}", f"--workdir={workdir}",
           "--config.progress_bar=False", *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True)
    out = {}
    for line in proc.stderr:
        for name, pattern in MARKS.items():
            match = pattern.search(line)
            if match and name not in out:
                out[name] = time.perf_counter() - t0
                if name == "first_step":
                    out["compile_s"] = float(match.group(1))
        if "first_step" in out:
            break
    proc.send_signal(signal.SIGKILL)    # only the process started here
    proc.wait()
    return out


def main(argv=None) -> None:
    fv = common.flag_values(shared=False)
    flags.DEFINE_string("config", "configs/quickstart.py", "config of the timed runs",
                        flag_values=fv)
    flags.DEFINE_integer("repeats", 1, "warm-cache runs", flag_values=fv)
    # Arguments after the flags (after `--` for flags): more flags for jaxkd.main.
    args = common.parse(fv, argv, __doc__, positional=True)
    base = {k: v for k, v in os.environ.items()
            if k not in ("JAX_COMPILATION_CACHE_DIR", "JAXKD_NO_COMPILE_CACHE")}
    cache = tempfile.mkdtemp(prefix="jaxkd_startup_cache_")
    runs = [("off", dict(base, JAXKD_NO_COMPILE_CACHE="1"))]
    # The cache is set through JAX's own variable, as compile_cache.enable() would set it
    # (with its 0.5 s threshold), so this measures the same whether or not the CLI calls it.
    cached = dict(base, JAX_COMPILATION_CACHE_DIR=cache,
                  JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5")
    runs += [("cold", cached)] + [("warm", cached)] * args.repeats
    print(f"{'cache':<6} {'devices':>8} {'phase':>8} {'1st step':>9} {'compile':>8}")
    for name, env in runs:
        r = one(args.config, env, args.args)
        print(f"{name:<6} {r.get('devices', float('nan')):8.1f} "
              f"{r.get('phase', float('nan')):8.1f} {r.get('first_step', float('nan')):9.1f} "
              f"{r.get('compile_s', float('nan')):8.1f}", flush=True)


if __name__ == "__main__":
    main()
