"""Kill anywhere: SIGKILL a tiny three-generation run at random moments, resume, compare.

    python -m tests.chaos.kill_driver            # CI size: at least 10 kills
    python -m tests.chaos.kill_driver --full     # at least 100 kills, BAN and RCO rounds

One uninterrupted reference run of `tests/chaos/tiny_config.py` (born-again, three
generations, a checkpoint after every step) through the CLI, then rounds of: start the same
command in a fresh workdir, kill it with SIGKILL at a moment drawn from a seeded RNG, start
the same command again, ... until the round's kills are spent; then let it finish and
compare with the reference: `results.json` without wall times, every line of
`metrics.jsonl` without its throughput, and the whole final state (parameters, BatchNorm
statistics, optimiser state, step) of every phase, bit for bit.

Kill moments (each attempt draws one):
  * `startup`: a uniform time before the first checkpoint (imports, data, compilation);
  * `anytime`: a uniform time over a whole uninterrupted run;
  * `write`: right after a new periodic checkpoint folder appears, i.e. while orbax is
    writing it asynchronously (plus a uniform delay of up to 0.3 s);
  * `boundary`: right after a phase's final checkpoint appears (between phases).

Subprocesses see one CPU device and a persistent compilation cache, so a restart does not
recompile.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG = "tests/chaos/tiny_config.py"             # born-again, three generations
RCO_CONFIG = "tests/chaos/tiny_rco_config.py"     # RCO: teacher with anchors, two stages
MODES = (("startup", 0.2), ("anytime", 0.2), ("write", 0.45), ("boundary", 0.15))
KILLS_PER_ROUND = 12
ATTEMPT_TIMEOUT_S = 300.0


def subprocess_env(cache_dir: str = "/tmp/jaxkd_chaos_compilation_cache") -> dict:
    """One CPU device and a persistent compilation cache that keeps every program."""
    env = dict(os.environ)
    env.update(XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu",
               JAX_COMPILATION_CACHE_DIR=cache_dir,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def command(workdir: pathlib.Path, npz: pathlib.Path, config: str = CONFIG) -> list[str]:
    """The CLI command of the chaos run (the same for the first start and every resume)."""
    return [sys.executable, "-m", "jaxkd.main", f"--config={config}", f"--workdir={workdir}",
            f"--config.data.path={npz}"]


def _entries(workdir: pathlib.Path, kind: str) -> set[str]:
    """Names under phases/*/<kind>/ (temporary orbax folders included)."""
    found = set()
    for phase in (workdir / "phases").glob("*"):
        try:
            found |= {f"{phase.name}/{p.name}" for p in (phase / kind).iterdir()}
        except OSError:
            pass
    return found


@dataclasses.dataclass
class Attempt:
    """What happened to one start of the command."""

    mode: str
    killed: bool
    returncode: int | None
    timed_out: bool
    seconds: float
    log: str


class Runner:
    """Starts the command, watches the workdir, kills at the drawn moment."""

    def __init__(self, npz: pathlib.Path, base: pathlib.Path, env: dict, config: str):
        self.npz, self.base, self.env, self.config = npz, base, env, config
        self.name = pathlib.Path(config).stem
        self.t_first_ckpt, self.t_total, self.last_phase = 10.0, 30.0, ""

    def _spawn(self, workdir: pathlib.Path, log: pathlib.Path):
        with log.open("w") as out:
            return subprocess.Popen(command(workdir, self.npz, self.config), cwd=REPO,
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def reference(self) -> pathlib.Path:
        """The uninterrupted run; also measures when the first checkpoint appears."""
        workdir = self.base / f"reference-{self.name}"
        log = self.base / f"reference-{self.name}.log"
        t0, proc = time.monotonic(), self._spawn(workdir, log)
        first = None
        while proc.poll() is None:
            if first is None and _entries(workdir, "ckpt"):
                first = time.monotonic() - t0
            time.sleep(0.02)
        _check_ok(proc.returncode, log)
        self.t_total = time.monotonic() - t0
        self.t_first_ckpt = first or self.t_total / 2
        results = json.loads((workdir / "results.json").read_text())
        self.last_phase = results["phases"][-1]["name"]
        return workdir

    def _trigger(self, mode: str, rng: random.Random, workdir: pathlib.Path):
        """A function of elapsed seconds saying whether to kill now."""
        if mode == "none":
            return lambda elapsed: False
        if mode in ("startup", "anytime"):
            limit = self.t_first_ckpt if mode == "startup" else self.t_total / 2
            at = rng.uniform(0.0, limit)
            return lambda elapsed: elapsed >= at
        kind = "ckpt" if mode == "write" else "final"
        before, delay, seen = _entries(workdir, kind), rng.uniform(0.0, 0.3), [None]
        last = f"{self.last_phase}/"   # the last phase's final ends the run: no boundary

        def due(elapsed):
            new = _entries(workdir, kind) - before
            if mode == "boundary":
                new = {n for n in new if not n.startswith(last)}
            if seen[0] is None and new:
                seen[0] = elapsed
            return seen[0] is not None and elapsed >= seen[0] + (delay if mode == "write"
                                                                   else delay / 3)
        return due

    def attempt(self, workdir: pathlib.Path, mode: str, rng: random.Random,
                index: int) -> Attempt:
        """Starts the command; kills it when the trigger fires (unless it ends first)."""
        log = self.base / f"{workdir.name}.attempt{index}.log"
        due = self._trigger(mode, rng, workdir)
        t0, proc = time.monotonic(), self._spawn(workdir, log)
        killed = timed_out = False
        while proc.poll() is None:
            elapsed = time.monotonic() - t0
            timed_out = elapsed > ATTEMPT_TIMEOUT_S
            if due(elapsed) or timed_out:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed = not timed_out
                break
            time.sleep(0.01)
        return Attempt(mode, killed, None if killed else proc.returncode, timed_out,
                       time.monotonic() - t0, str(log))


def _check_ok(returncode: int | None, log: pathlib.Path) -> None:
    if returncode != 0:
        raise RuntimeError(f"run failed with exit code {returncode}; log {log}:\n" +
                           log.read_text()[-4000:])


def _draw_mode(rng: random.Random) -> str:
    names, weights = zip(*MODES)
    return rng.choices(names, weights)[0]


def snapshot(workdir: pathlib.Path) -> dict:
    """What must not depend on interruptions: results, metrics and every final state."""
    import numpy as np
    import orbax.checkpoint as ocp

    results = json.loads((workdir / "results.json").read_text())
    results.pop("run_wall_time", None)
    results.pop("provenance", None)
    for phase in results["phases"]:
        phase.pop("wall_time", None)
        phase.pop("checkpoint", None)
    metrics = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    for rec in metrics:
        rec.pop("images_per_sec", None)
    import jax

    states = {}
    with ocp.StandardCheckpointer() as ckptr:
        for phase in sorted((workdir / "phases").iterdir()):
            kept = {"final": phase / "final"} | {
                f"anchor{p.name}": p.parent for p in sorted((phase / "anchors").glob("*"))}
            for name, folder in kept.items():
                step = max(int(p.name) for p in folder.iterdir() if p.name.isdigit()) \
                    if name == "final" else int(name[len("anchor"):])
                tree = ckptr.restore(folder / str(step) / "state")
                states[f"{phase.name}/{name}"] = [np.asarray(x)
                                                  for x in jax.tree_util.tree_leaves(tree)]
    return {"results": results, "metrics": metrics, "states": states}


def differences(reference: dict, other: dict) -> list[str]:
    """Human-readable differences between two snapshots (empty: bit-identical)."""
    import numpy as np
    out = []
    for key in ("results", "metrics"):
        if reference[key] != other[key]:
            out.append(f"{key} differ:\n  reference {json.dumps(reference[key])[:1500]}\n"
                       f"  resumed   {json.dumps(other[key])[:1500]}")
    if reference["states"].keys() != other["states"].keys():
        out.append(f"phases differ: {sorted(reference['states'])} vs {sorted(other['states'])}")
    for name, leaves in reference["states"].items():
        got = other["states"].get(name, [])
        same = len(got) == len(leaves) and all(
            a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
            for a, b in zip(leaves, got))
        if not same:
            out.append(f"{name} state differs from the reference")
    return out


def chaos(kills: int, *, seed: int = 0, base: pathlib.Path | None = None,
          npz: pathlib.Path | None = None, keep: bool = False,
          configs: tuple[str, ...] = (CONFIG,)) -> dict:
    """Runs the kill loop until at least `kills` kills were made; returns a report.

    Args:
        kills: the number of SIGKILLs to make in all (over several rounds).
        seed: seeds the kill moments.
        base: scratch folder (a temporary one when None).
        npz: the tiny data set (written when None).
        keep: keep the scratch folder (logs, workdirs) for inspection.
        configs: config files; rounds take them in turn.

    Returns:
        {'kills_tried', 'kills_survived', 'rounds', 'modes', 'failures', 'seconds', ...};
        a kill is survived when its round's final results, metrics and states equal the
        reference run's bit for bit.
    """
    from tests.helpers import write_tiny_npz

    t0 = time.monotonic()
    base = pathlib.Path(base or tempfile.mkdtemp(prefix="jaxkd_chaos_"))
    base.mkdir(parents=True, exist_ok=True)
    npz = npz or write_tiny_npz(base / "tiny.npz")
    rng = random.Random(seed)
    runners = [Runner(npz, base, subprocess_env(), config) for config in configs]
    references = [snapshot(runner.reference()) for runner in runners]
    report = {"kills_tried": 0, "kills_survived": 0, "rounds": 0, "restarts": 0,
              "modes": {name: 0 for name, _ in MODES}, "failures": [],
              "configs": list(configs),
              "reference_seconds": [round(r.t_total, 1) for r in runners]}
    while report["kills_tried"] < kills:
        i = report["rounds"] % len(runners)
        _round(runners[i], rng, report, min(KILLS_PER_ROUND, kills - report["kills_tried"]),
               references[i])
    report["seconds"] = round(time.monotonic() - t0, 1)
    if not keep and not report["failures"]:
        shutil.rmtree(base, ignore_errors=True)
    else:
        report["scratch"] = str(base)
    return report


def _round(runner: Runner, rng: random.Random, report: dict, budget: int,
           reference: dict) -> None:
    """One fresh workdir: `budget` kills, then a run to the end, then the comparison."""
    report["rounds"] += 1
    workdir = runner.base / f"round{report['rounds']}-{runner.name}"
    kills, index = 0, 0
    while True:
        mode = _draw_mode(rng) if kills < budget else "none"
        last = runner.attempt(workdir, mode, rng, index)
        index += 1
        if not last.killed:
            break
        kills += 1
        report["modes"][last.mode] += 1
    report["kills_tried"] += kills
    report["restarts"] += index - 1
    if last.timed_out:
        report["failures"].append(f"{workdir}: no exit after {ATTEMPT_TIMEOUT_S}s; log "
                                  f"{last.log}")
        return
    if last.returncode != 0:
        tail = pathlib.Path(last.log).read_text()[-3000:]
        report["failures"].append(f"{workdir}: exit code {last.returncode} after {kills} "
                                  f"kills; log {last.log}:\n{tail}")
        return
    diff = differences(reference, snapshot(workdir))
    print(f"round {report['rounds']} ({runner.name}): {kills} kills, "
          f"{'DIFFERS' if diff else 'identical to the reference'}", file=sys.stderr,
          flush=True)
    if diff:
        report["failures"].append(f"{workdir} after {kills} kills: " + "\n".join(diff))
        return
    report["kills_survived"] += kills


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="at least 100 kills (CI: 10)")
    parser.add_argument("--kills", type=int, default=0, help="override the number of kills")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep logs and workdirs")
    args = parser.parse_args(argv)
    kills = args.kills or (100 if args.full else 10)
    configs = (CONFIG, RCO_CONFIG) if args.full else (CONFIG,)
    report = chaos(kills, seed=args.seed, keep=args.keep, configs=configs)
    print(json.dumps(report, indent=2))
    print(f"kills survived / kills tried: {report['kills_survived']} / {report['kills_tried']}")
    return 0 if not report["failures"] and report["kills_survived"] == report["kills_tried"] \
        else 1


if __name__ == "__main__":
    sys.exit(main())
