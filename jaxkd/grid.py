"""Run a grid of configs over seeds, resumably, and tabulate mean ± std over seeds.

Command (`jaxkd grid` is the same)::

    python -m jaxkd.grid --grid=grids/cpu_cifar100.py --root=DIR [--seeds=3]

A grid file is a Python file whose `get_grid()` returns {name: ConfigDict} (each built from
`jaxkd.config.default_config()`). The seeds of a config share its architecture and
schedule, so by default they train packed (`config.num_seeds`, `jaxkd.engine.packed`):
one run per config, `config.seed = 0` and `num_seeds = N` in `DIR/<name>/seeds0-<N-1>`,
seed k's complete workdir in its `seeds/<k>/`; configs run one after the other.
`--nopack_seeds` runs each (name, seed k) alone, with `config.seed = k`, in
`DIR/<name>/seed<k>`, seed-major (seed 0 of every config, then seed 1, ...: a grid stopped
early still compares every config). A job whose seeds all have a `results.json` is
skipped; an unfinished one resumes where it stopped (`jaxkd.run.run` resumes mid-phase),
so rerunning the same command after a crash or a kill continues the grid. A seed finished
either way counts for the summary. `--only=a,b` restricts the grid; `--summary_only`
rewrites the table without running.

Each job is a child process (`python -m jaxkd.grid --run_one=NAME:SEED[:NUM_SEEDS]`, a
flag --help does not list): a crash, an out-of-memory kill or a bad config in one job is
recorded and the grid goes on; each job starts with a clean JAX (no compile caches or
device buffers piling up over dozens of runs); the child's log goes to its workdir's
`run.log`, the parent prints a line per start / finish with an ETA. The cost is a few
seconds of start-up per job (set JAX_COMPILATION_CACHE_DIR to share compiled programs
between jobs). `--in_process` runs everything in this process instead.

At the end (and after every finished run) `DIR/summary.md` and `DIR/summary.json` hold, per
config, the mean ± sample std over the finished seeds of each phase's best and last test
top-1, of each ensemble, and of the wall time; then `jaxkd.report.write_report` (unless
`--noreport`) writes the per-run reports and per-config aggregate figures
(`DIR/<name>/aggregate.md`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import pathlib
import subprocess
import sys
import time
from typing import Mapping, Sequence

import numpy as np
from absl import app, flags

from jaxkd import analysis, report as report_lib, run as run_lib
from jaxkd import workdir as workdir_lib

RESULTS = "results.json"
LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"   # a child's run.log


def load_module(path: str | pathlib.Path):
    """The grid file at `path` as a module (its `get_grid()`, and e.g. `PAIRS`)."""
    path = pathlib.Path(path)
    spec = importlib.util.spec_from_file_location(f"jaxkd_grid_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_grid(path: str | pathlib.Path) -> dict:
    """{name: ConfigDict} from a grid file's `get_grid()` (names must be path-safe)."""
    grid = dict(load_module(path).get_grid())
    for name in grid:
        if not name or "/" in name or ":" in name or name.startswith("."):
            raise ValueError(f"{path}: grid name {name!r} is not a directory name "
                             f"without ':'")
    return grid


def seeded(config, seed: int):
    """A copy of `config` with `seed` set (the harness owns the seed)."""
    config = config.copy_and_resolve_references()
    config.seed = seed
    return config


def workdir_of(root: pathlib.Path, name: str, seed: int, num_seeds: int = 1) -> pathlib.Path:
    """The workdir of a job: seed `seed` alone, or `num_seeds` packed seeds from `seed`."""
    if num_seeds == 1:
        return pathlib.Path(root) / name / f"seed{seed}"
    return pathlib.Path(root) / name / f"seeds{seed}-{seed + num_seeds - 1}"


def is_finished(workdir: pathlib.Path) -> bool:
    return (pathlib.Path(workdir) / RESULTS).exists()


def finished_workdir(root: pathlib.Path, name: str, seed: int,
                     seeds: Sequence[int]) -> pathlib.Path | None:
    """Where seed `seed` of config `name` finished: alone, or packed with `seeds`."""
    alone = workdir_of(root, name, seed)
    in_pack = workdir_lib.seed_workdir(workdir_of(root, name, seeds[0], len(seeds)), seed)
    return next((w for w in (alone, in_pack) if is_finished(w)), None)


def jobs_of(grid: Mapping, seeds: Sequence[int], pack: bool) -> list[tuple[str, int, int]]:
    """(name, first seed, number of seeds) of every job: one per config with the seeds
    packed (`pack`; the seeds must be consecutive), else one per (seed, config),
    seed-major."""
    if pack and len(seeds) > 1:
        if list(seeds) != list(range(seeds[0], seeds[0] + len(seeds))):
            raise ValueError(f"packed seeds must be consecutive, got {list(seeds)}")
        return [(name, seeds[0], len(seeds)) for name in grid]
    return [(name, s, 1) for s in seeds for name in grid]


def run_wall_time(results: Mapping) -> float:
    """Training time of a run: the phases' accumulated wall time (survives resumes)."""
    times = [p["wall_time"] for p in results.get("phases", []) if "wall_time" in p]
    return float(sum(times)) if times else float(results.get("run_wall_time", 0.0))


def aggregate(results_list: Sequence[Mapping]) -> dict:
    """Mean ± std over runs of each phase's best/last top-1 and top-5, each ensemble, the
    wall time: `jaxkd.analysis.aggregate_results` plus each phase's model, each
    ensemble's members and the wall time."""
    agg = analysis.aggregate_results(results_list)
    for res in results_list:
        for rec in res.get("phases", []):
            agg["phases"].get(rec["name"], {}).setdefault("model", rec.get("model", ""))
        for name, ens in res.get("ensembles", {}).items():
            agg["ensembles"].get(name, {}).setdefault("members", ens.get("members", []))
    return dict(agg, wall_time=analysis.mean_std([run_wall_time(r) for r in results_list]))


def collect(root: pathlib.Path, grid: Mapping, seeds: Sequence[int]) -> dict:
    """Aggregates of every config of the grid over its finished seeds."""
    out = {}
    for name, config in grid.items():
        where = {s: finished_workdir(root, name, s, seeds) for s in seeds}
        done = [s for s in seeds if where[s] is not None]
        results = [analysis.load_results(where[s]) for s in done]
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
    """Per-run reports and per-config aggregate figures (`jaxkd.report.write_report`)."""
    for name, s in summary.items():
        if s["seeds"]:
            workdirs = [finished_workdir(root, name, k, s["seeds"] + s["pending"])
                        for k in s["seeds"]]
            try:
                report_lib.write_report(workdirs, out=root / name, evaluate=False)
            except Exception as err:  # a figure must never lose the grid's numbers
                print(f"report of {name} failed: {err!r}", flush=True)


def run_one(grid_path: str, name: str, seed: int, root: pathlib.Path,
            num_seeds: int = 1) -> None:
    """Runs one job in this process (the child's side of `--run_one`): config `name`
    with `seed`, alone or with `num_seeds` packed seeds."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.WARNING)   # orbax's per-save chatter
    config = seeded(load_grid(grid_path)[name], seed)
    config.num_seeds = num_seeds
    run_lib.run(config, workdir_of(root, name, seed, num_seeds))


def _child(grid_path: str, root: pathlib.Path, name: str, seed: int, num_seeds: int) -> int:
    cmd = [sys.executable, "-m", "jaxkd.grid", f"--grid={grid_path}",
           f"--root={root}", f"--run_one={name}:{seed}:{num_seeds}"]
    with open(workdir_of(root, name, seed, num_seeds) / "run.log", "a") as log:
        return subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)


def _inline(grid_path: str, root: pathlib.Path, name: str, seed: int, num_seeds: int) -> int:
    try:
        run_one(grid_path, name, seed, root, num_seeds)
        return 0
    except Exception as err:  # noqa: BLE001 - recorded as a failed run, the grid goes on
        print(f"{job_name(name, seed, num_seeds)}: {err!r}", flush=True)
        return 1


def job_name(name: str, seed: int, num_seeds: int) -> str:
    """'name/seedK', or 'name/seedsK-L' for packed seeds (the job's workdir under root)."""
    return f"{name}/{workdir_of(pathlib.Path(), name, seed, num_seeds).name}"


def _eta(durations: list[float], remaining: int) -> str:
    return f"ETA {np.mean(durations) * remaining / 60:.0f} min" if durations else "ETA ?"


def run_grid(grid_path: str, root: str | pathlib.Path, seeds: Sequence[int], *,
             only: Sequence[str] = (), report: bool = True, isolate: bool = True,
             pack: bool = True) -> int:
    """Runs every unfinished job, one child process each (`isolate=False`: in this
    process, for tests): a config's seeds packed (`pack`), else one job per (config,
    seed); returns the number of failed jobs."""
    root = pathlib.Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    grid = load_grid(grid_path)
    if only:
        unknown = set(only) - set(grid)
        if unknown:
            raise ValueError(f"--only: {sorted(unknown)} not in the grid {sorted(grid)}")
        grid = {n: c for n, c in grid.items() if n in only}
    jobs = jobs_of(grid, seeds, pack)
    todo = [(n, s, k) for n, s, k in jobs
            if any(finished_workdir(root, n, x, seeds) is None for x in range(s, s + k))]
    runs = len(grid) * len(seeds)
    print(f"grid {grid_path}: {len(grid)} configs x {len(seeds)} seeds = {runs} runs in "
          f"{len(jobs)} jobs{' (seeds packed)' if len(jobs) < runs else ''}, "
          f"{len(jobs) - len(todo)} finished earlier, {len(todo)} to run; root {root}",
          flush=True)
    durations, failed, t0 = [], [], time.time()
    for i, (name, seed, num_seeds) in enumerate(todo):
        workdir, job = workdir_of(root, name, seed, num_seeds), job_name(name, seed, num_seeds)
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"[{i + 1}/{len(todo)}] start  {job}  ({_eta(durations, len(todo) - i)})",
              flush=True)
        start = time.time()
        run = _child if isolate else _inline
        code = run(grid_path, root, name, seed, num_seeds)
        took = time.time() - start
        ok = code == 0 and is_finished(workdir)
        if ok:
            durations.append(took)
        else:
            failed.append(job)
        print(f"[{i + 1}/{len(todo)}] {'done' if ok else f'FAILED (exit {code})'}  "
              f"{job} in {took / 60:.1f} min; elapsed "
              f"{(time.time() - t0) / 60:.1f} min, {_eta(durations, len(todo) - i - 1)}"
              + ("" if ok else f"; see {workdir / 'run.log'}"), flush=True)
        write_summary(root, grid, seeds, title=f"{grid_path}")
    summary = write_summary(root, grid, seeds, title=f"{grid_path}")
    if report:
        write_reports(root, summary)
    print(f"summary: {root / 'summary.md'}; failed: {failed or 'none'}", flush=True)
    return len(failed)


# -- command line: `python -m jaxkd.grid` (app.run) and `jaxkd grid` (jaxkd.cli.grid) --
CHILD_MODULE = "jaxkd.grid (internal)"   # the child's flag: not in --help (main module)


def define_flags(fv: flags.FlagValues = flags.FLAGS, *, child: bool = True) -> None:
    """The grid's flags in `fv` (`child`: also `--run_one`, the hidden child mode)."""
    flags.DEFINE_string("grid", None, "Grid file with get_grid().", flag_values=fv)
    flags.DEFINE_string("root", None, "Directory of the workdirs and the summary.",
                        flag_values=fv)
    flags.DEFINE_integer("seeds", 3, "Seeds 0 .. N-1.", flag_values=fv)
    flags.DEFINE_string("only", "", "Comma-separated config names to run.", flag_values=fv)
    flags.DEFINE_bool("report", True, "Per-run reports and aggregate figures "
                      "(jaxkd.report); --noreport skips them.", flag_values=fv)
    flags.DEFINE_bool("pack_seeds", True, "Train a config's seeds packed in one program "
                      "(config.num_seeds); --nopack_seeds: one run per seed.",
                      flag_values=fv)
    flags.DEFINE_bool("in_process", False, "Run in this process instead of one child "
                      "process per run.", flag_values=fv)
    flags.DEFINE_bool("summary_only", False, "Only (re)write the summary.", flag_values=fv)
    if child:
        flags.DEFINE_string("run_one", "", "NAME:SEED: run that one in this process (what "
                            "the grid's child processes do).", flag_values=fv,
                            module_name=CHILD_MODULE)
    flags.mark_flags_as_required(["grid", "root"], flag_values=fv)


def main_with(fv: flags.FlagValues) -> int:
    """The command, on parsed flags; the exit code (1: some run failed)."""
    root = pathlib.Path(fv["root"].value).absolute()
    grid_path = fv["grid"].value
    if "run_one" in fv and fv["run_one"].value:
        name, seed, num_seeds = (fv["run_one"].value.split(":") + ["1"])[:3]
        # The child's log in its own format, not through the absl handler app.run set up.
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, force=True)
        run_one(grid_path, name, int(seed), root, int(num_seeds))
        return 0
    seeds = list(range(fv["seeds"].value))
    if fv["summary_only"].value:
        summary = write_summary(root, load_grid(grid_path), seeds, title=grid_path)
        if fv["report"].value:
            write_reports(root, summary)
        print(root / "summary.md")
        return 0
    only = [n for n in fv["only"].value.split(",") if n]
    return int(run_grid(grid_path, root, seeds, only=only, report=fv["report"].value,
                        isolate=not fv["in_process"].value,
                        pack=fv["pack_seeds"].value) > 0)


def main(argv: Sequence[str]) -> int:
    """Entry point of `python -m jaxkd.grid` (absl's app.run, global flags)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {list(argv[1:])}")
    return main_with(flags.FLAGS)


if __name__ == "__main__":
    define_flags()
    app.run(main)
