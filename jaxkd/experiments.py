"""Run a grid of configs over seeds, resumably, and tabulate mean ± std over seeds.

Command::

    python -m jaxkd.experiments --grid=experiments/cpu_cifar100.py --root=DIR [--seeds=3]

A grid file is a Python file whose `get_grid()` returns {name: ConfigDict} (each built from
`jaxkd.config.default_config()`). Each (name, seed k) runs with `config.seed = k` in its own
workdir `DIR/<name>/seed<k>`, one at a time, seed-major (seed 0 of every config, then
seed 1, ...: a grid stopped early still compares every config). A run whose `results.json`
exists is skipped; an unfinished one resumes where it stopped (`jaxkd.run.run` resumes
mid-phase), so rerunning the same command after a crash or a kill continues the grid.
`--only=a,b` restricts the grid; `--summary_only` rewrites the table without running.

Each run is a child process (`--run_one`): a crash, an out-of-memory kill or a bad config in
one run is recorded and the grid goes on; each run starts with a clean JAX (no compile
caches or device buffers piling up over dozens of runs); the child's log goes to
`DIR/<name>/seed<k>/run.log`, the parent prints a line per start / finish with an ETA. The
cost is a few seconds of start-up per run (set JAX_COMPILATION_CACHE_DIR to share compiled
programs between runs). `--in_process` runs everything in this process instead.

At the end (and after every finished run) `DIR/summary.md` and `DIR/summary.json` hold, per
config, the mean ± sample std over the finished seeds of each phase's best and last test
top-1, of each ensemble, and of the wall time; then `jaxkd.report.write_report` (if present)
writes the per-run reports and per-config aggregate figures (`DIR/<name>/aggregate.md`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import subprocess
import sys
import time
from typing import Mapping, Sequence

import numpy as np

RESULTS = "results.json"


def load_grid(path: str | pathlib.Path) -> dict:
    """{name: ConfigDict} from a grid file's `get_grid()` (names must be path-safe)."""
    path = pathlib.Path(path)
    spec = importlib.util.spec_from_file_location(f"jaxkd_grid_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    grid = dict(module.get_grid())
    for name in grid:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"{path}: grid name {name!r} is not a directory name")
    return grid


def seeded(config, seed: int):
    """A copy of `config` with `seed` set (the harness owns the seed)."""
    config = config.copy_and_resolve_references()
    config.seed = seed
    return config


def workdir_of(root: pathlib.Path, name: str, seed: int) -> pathlib.Path:
    return pathlib.Path(root) / name / f"seed{seed}"


def is_finished(workdir: pathlib.Path) -> bool:
    return (pathlib.Path(workdir) / RESULTS).exists()


def _mean_std(values: Sequence[float]) -> dict:
    """{'mean', 'std' (sample, ddof=1; 0 for one run), 'n'} as `jaxkd.analysis.mean_std`."""
    x = np.asarray(list(values), np.float64)
    return {"mean": float(x.mean()) if len(x) else float("nan"),
            "std": float(x.std(ddof=1)) if len(x) > 1 else 0.0, "n": len(x)}


def run_wall_time(results: Mapping) -> float:
    """Training time of a run: the phases' accumulated wall time (survives resumes)."""
    times = [p["wall_time"] for p in results.get("phases", []) if "wall_time" in p]
    return float(sum(times)) if times else float(results.get("run_wall_time", 0.0))


def aggregate(results_list: Sequence[Mapping]) -> dict:
    """Mean ± std over runs of each phase's best/last top-1, each ensemble, the wall time.

    Uses `jaxkd.analysis.aggregate_results` when present (it also gives top-5) and adds
    each phase's model, each ensemble's members and the wall time.
    """
    try:
        from jaxkd.analysis import aggregate_results
        agg = aggregate_results(results_list)
    except (ImportError, AttributeError):
        agg = _aggregate_top1(results_list)
    for res in results_list:
        for rec in res.get("phases", []):
            agg["phases"].get(rec["name"], {}).setdefault("model", rec.get("model", ""))
        for name, ens in res.get("ensembles", {}).items():
            agg["ensembles"].get(name, {}).setdefault("members", ens.get("members", []))
    return dict(agg, wall_time=_mean_std([run_wall_time(r) for r in results_list]))


def _aggregate_top1(results_list: Sequence[Mapping]) -> dict:
    phases, ensembles = {}, {}
    for res in results_list:
        for rec in res.get("phases", []):
            row = phases.setdefault(rec["name"], {})
            for key in ("best_top1", "last_top1"):
                if key in rec:
                    row.setdefault(key, []).append(rec[key])
        for name, ens in res.get("ensembles", {}).items():
            ensembles.setdefault(name, {}).setdefault("top1", []).append(ens["top1"])
    stats = lambda table: {n: {k: _mean_std(v) for k, v in row.items()}
                           for n, row in table.items()}
    return {"runs": len(results_list), "phases": stats(phases),
            "ensembles": stats(ensembles)}


def collect(root: pathlib.Path, grid: Mapping, seeds: Sequence[int]) -> dict:
    """Aggregates of every config of the grid over its finished seeds."""
    out = {}
    for name, config in grid.items():
        done = [s for s in seeds if is_finished(workdir_of(root, name, s))]
        results = [json.loads((workdir_of(root, name, s) / RESULTS).read_text())
                   for s in done]
        out[name] = dict(aggregate(results), method=config.method, model=config.model,
                         seeds=done, pending=[s for s in seeds if s not in done])
    return out


def _pm(stat: Mapping | None, scale: float = 100.0, digits: int = 2) -> str:
    if not stat or not stat.get("n"):
        return "–"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"


def summary_markdown(summary: Mapping, title: str = "") -> str:
    """The headline table (last phase, ensembles) then every phase of every config."""
    lines = [f"# {title or 'Grid summary'}", "",
             "Test top-1 %, mean ± sample std over n seeds; wall time in minutes (training "
             "and evaluation of all phases of one run).", "",
             "| config | method | n | final phase | best top-1 | last top-1 | ensembles | "
             "wall min |", "|---|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        last = list(s["phases"])[-1] if s["phases"] else ""
        p = s["phases"].get(last, {})
        ens = "; ".join(f"{e}: {_pm(v['top1'])}" for e, v in s["ensembles"].items()) or "–"
        lines.append(f"| {name} | {s['method']} | {s['runs']} | {last} | "
                     f"{_pm(p.get('best_top1'))} | {_pm(p.get('last_top1'))} | {ens} | "
                     f"{_pm(s['wall_time'], 1 / 60, 1)} |")
    lines += ["", "## Every phase", "",
              "| config | phase | model | n | best top-1 | last top-1 |", "|---|---|---|---|---|---|"]
    for name, s in summary.items():
        for ph, p in s["phases"].items():
            lines.append(f"| {name} | {ph} | {p['model']} | {p['best_top1']['n']} | "
                         f"{_pm(p.get('best_top1'))} | {_pm(p.get('last_top1'))} |")
        for e, v in s["ensembles"].items():
            lines.append(f"| {name} | ensemble {e} ({'+'.join(v['members'])}) | | "
                         f"{v['top1']['n']} | {_pm(v['top1'])} | |")
    pending = [f"{n}/seed{k}" for n, s in summary.items() for k in s["pending"]]
    if pending:
        lines += ["", f"Pending or failed ({len(pending)}): " + ", ".join(pending)]
    return "\n".join(lines) + "\n"


def write_summary(root: pathlib.Path, grid: Mapping, seeds: Sequence[int], title="") -> dict:
    summary = collect(root, grid, seeds)
    for name, text in (("summary.json", json.dumps(summary, indent=2, sort_keys=True)),
                       ("summary.md", summary_markdown(summary, title))):
        (root / f".{name}.tmp").write_text(text)
        (root / f".{name}.tmp").replace(root / name)   # atomic: a kill leaves the old one
    return summary


def write_reports(root: pathlib.Path, summary: Mapping) -> None:
    """Per-run reports and per-config aggregate figures through `jaxkd.report`, if any."""
    try:
        from jaxkd.report import write_report
    except (ImportError, AttributeError):
        return
    for name, s in summary.items():
        if s["seeds"]:
            try:
                write_report([workdir_of(root, name, k) for k in s["seeds"]],
                             out=root / name, evaluate=False)
            except Exception as err:  # a figure must never lose the grid's numbers
                print(f"report of {name} failed: {err!r}", flush=True)


def run_one(grid_path: str, name: str, seed: int, root: pathlib.Path) -> None:
    """Runs one (config, seed) in this process (the child's side of `--run_one`)."""
    import logging
    from jaxkd import run as run_lib
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.WARNING)   # orbax's per-save chatter
    config = seeded(load_grid(grid_path)[name], seed)
    run_lib.run(config, workdir_of(root, name, seed))


def _child(grid_path: str, root: pathlib.Path, name: str, seed: int) -> int:
    cmd = [sys.executable, "-m", "jaxkd.experiments", f"--grid={grid_path}",
           f"--root={root}", f"--run_one={name}:{seed}"]
    with open(workdir_of(root, name, seed) / "run.log", "a") as log:
        return subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)


def _inline(grid_path: str, root: pathlib.Path, name: str, seed: int) -> int:
    try:
        run_one(grid_path, name, seed, root)
        return 0
    except Exception as err:  # noqa: BLE001 - recorded as a failed run, the grid goes on
        print(f"{name}/seed{seed}: {err!r}", flush=True)
        return 1


def _eta(durations: list[float], remaining: int) -> str:
    return f"ETA {np.mean(durations) * remaining / 60:.0f} min" if durations else "ETA ?"


def run_grid(grid_path: str, root: str | pathlib.Path, seeds: Sequence[int], *,
             only: Sequence[str] = (), report: bool = True, isolate: bool = True) -> int:
    """Runs every unfinished (config, seed), one child process each (`isolate=False`: in
    this process, for tests); returns the number of failed runs."""
    root = pathlib.Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    grid = load_grid(grid_path)
    if only:
        unknown = set(only) - set(grid)
        if unknown:
            raise ValueError(f"--only: {sorted(unknown)} not in the grid {sorted(grid)}")
        grid = {n: c for n, c in grid.items() if n in only}
    jobs = [(n, s) for s in seeds for n in grid]   # seed-major: a cut grid stays balanced
    todo = [(n, s) for n, s in jobs if not is_finished(workdir_of(root, n, s))]
    print(f"grid {grid_path}: {len(grid)} configs x {len(seeds)} seeds = {len(jobs)} runs, "
          f"{len(jobs) - len(todo)} finished earlier, {len(todo)} to run; root {root}",
          flush=True)
    durations, failed, t0 = [], [], time.time()
    for i, (name, seed) in enumerate(todo):
        workdir = workdir_of(root, name, seed)
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"[{i + 1}/{len(todo)}] start  {name}/seed{seed}  "
              f"({_eta(durations, len(todo) - i)})", flush=True)
        start = time.time()
        code = _child(grid_path, root, name, seed) if isolate else _inline(grid_path, root,
                                                                            name, seed)
        took = time.time() - start
        ok = code == 0 and is_finished(workdir)
        if ok:
            durations.append(took)
        else:
            failed.append(f"{name}/seed{seed}")
        print(f"[{i + 1}/{len(todo)}] {'done' if ok else f'FAILED (exit {code})'}  "
              f"{name}/seed{seed} in {took / 60:.1f} min; elapsed "
              f"{(time.time() - t0) / 60:.1f} min, {_eta(durations, len(todo) - i - 1)}"
              + ("" if ok else f"; see {workdir / 'run.log'}"), flush=True)
        write_summary(root, grid, seeds, title=f"{grid_path}")
    summary = write_summary(root, grid, seeds, title=f"{grid_path}")
    if report:
        write_reports(root, summary)
    print(f"summary: {root / 'summary.md'}; failed: {failed or 'none'}", flush=True)
    return len(failed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxkd.experiments",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", required=True, help="grid file with get_grid()")
    parser.add_argument("--root", required=True, help="directory of the workdirs and summary")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1")
    parser.add_argument("--only", default="", help="comma-separated config names to run")
    parser.add_argument("--noreport", action="store_true", help="skip jaxkd.report figures")
    parser.add_argument("--in_process", action="store_true",
                        help="run in this process instead of one child process per run")
    parser.add_argument("--summary_only", action="store_true", help="only (re)write summary")
    parser.add_argument("--run_one", default="", help=argparse.SUPPRESS)  # NAME:SEED (child)
    args = parser.parse_args(argv)
    root = pathlib.Path(args.root).absolute()
    if args.run_one:
        name, seed = args.run_one.rsplit(":", 1)
        run_one(args.grid, name, int(seed), root)
        return 0
    seeds = list(range(args.seeds))
    if args.summary_only:
        summary = write_summary(root, load_grid(args.grid), seeds, title=args.grid)
        if not args.noreport:
            write_reports(root, summary)
        print(root / "summary.md")
        return 0
    only = [n for n in args.only.split(",") if n]
    return int(run_grid(args.grid, root, seeds, only=only, report=not args.noreport,
                        isolate=not args.in_process) > 0)


if __name__ == "__main__":
    sys.exit(main())
