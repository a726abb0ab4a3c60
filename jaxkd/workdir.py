"""The workdir on disk: its layout, atomic JSON writes, and one writer per workdir.

This module is the one owner of the layout; every other module asks it for paths:

    <workdir>/config.json          the resolved config the run was made with
    <workdir>/provenance.jsonl     one record per invocation (`jaxkd.provenance`)
    <workdir>/metrics.jsonl        train/eval records (`jaxkd.engine.writer`)
    <workdir>/results.json         the finished plan's phases and ensembles
    <workdir>/rco_route.json       greedy RCO: plan index -> chosen anchor
    <workdir>/report.md, analysis.json, *.png     the report (`jaxkd.report`)
    <workdir>/phases/<phase>/ckpt/<step>/      periodic checkpoints
    <workdir>/phases/<phase>/final/<step>/     the phase's immutable final checkpoint
    <workdir>/phases/<phase>/anchors/<epoch>/  RCO anchors (kept for good)
    <workdir>/phases/<phase>/damaged/          damaged periodic checkpoints set aside

Locking: `run.run()` takes the lock right after creating the workdir, before anything is
written in it, and holds it until it returns or raises:

    with workdir.lock(path, process_index=jax.process_index()):
        ...                                    # config.json, provenance, training, report

The lock is `fcntl.flock(LOCK_EX | LOCK_NB)` on a lock file inside the workdir: `.lock` for
process 0 (every single-process run), `.lock.<i>` for process i > 0 of a multi-process run.
Every run has a process 0, so a second run on a busy workdir is refused whatever its process
count. The kernel releases a flock when the last descriptor of the locking open file goes,
so a process that dies in any way (SIGKILL included) frees the workdir: a lock file left
behind is taken over by the next run (its record is overwritten), and kill/resume works as
before. The lock file is never deleted or replaced; it holds, as JSON written after the
lock is taken, who holds it: pid, host, process index and since when. A second process gets
`WorkdirLockedError` (an `OSError`) naming the workdir and that holder.

Not covered: a filesystem without working `flock` (the lock is then skipped with a warning);
on NFS, Linux emulates `flock` with byte-range locks, which do work across clients. This
module does not import JAX: writers that only process 0 may run take `process_index`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import json
import logging
import os
import pathlib
import socket
import time
from typing import Iterator

log = logging.getLogger(__name__)


# -- layout ------------------------------------------------------------------------------
CONFIG_JSON = "config.json"
RESULTS_JSON = "results.json"
METRICS_JSONL = "metrics.jsonl"
PROVENANCE_JSONL = "provenance.jsonl"
ROUTE_JSON = "rco_route.json"
PHASES = "phases"


def config_path(workdir: str | os.PathLike) -> pathlib.Path:
    return pathlib.Path(workdir) / CONFIG_JSON


def results_path(workdir: str | os.PathLike) -> pathlib.Path:
    return pathlib.Path(workdir) / RESULTS_JSON


def metrics_path(workdir: str | os.PathLike) -> pathlib.Path:
    return pathlib.Path(workdir) / METRICS_JSONL


def provenance_path(workdir: str | os.PathLike) -> pathlib.Path:
    return pathlib.Path(workdir) / PROVENANCE_JSONL


def route_path(workdir: str | os.PathLike) -> pathlib.Path:
    return pathlib.Path(workdir) / ROUTE_JSON


def seed_workdir(workdir: str | os.PathLike, seed: int) -> pathlib.Path:
    """The workdir of seed `seed` of a packed run (`config.num_seeds` > 1)."""
    return pathlib.Path(workdir) / "seeds" / str(seed)


def packed_dir(workdir: str | os.PathLike, name: str) -> pathlib.Path:
    """`<workdir>/packed/<name>`: the stacked periodic checkpoints of a phase of packed
    seeds while it trains (removed once every seed's final checkpoint is committed)."""
    return pathlib.Path(workdir) / "packed" / name


def phase_dir(workdir: str | os.PathLike, name: str) -> pathlib.Path:
    """`<workdir>/phases/<name>`: everything one phase of the plan writes."""
    return pathlib.Path(workdir) / PHASES / name


@dataclasses.dataclass(frozen=True)
class PhaseLayout:
    """The folders of one phase directory (`phase_dir`)."""

    path: pathlib.Path

    @property
    def ckpt(self) -> pathlib.Path:
        return self.path / "ckpt"

    @property
    def final(self) -> pathlib.Path:
        return self.path / "final"

    @property
    def anchors(self) -> pathlib.Path:
        return self.path / "anchors"

    @property
    def damaged(self) -> pathlib.Path:
        return self.path / "damaged"

    def anchor(self, epoch: int) -> pathlib.Path:
        return self.anchors / str(epoch)

    def has_final(self) -> bool:
        """Whether the phase holds a committed final checkpoint (a numbered step folder)."""
        return self.final.is_dir() and any(p.name.isdigit() for p in self.final.iterdir())

    def begun(self) -> bool:
        """Whether the phase has written any checkpoint (periodic, final or anchor)."""
        return any(sub.is_dir() and any(sub.iterdir())
                   for sub in (self.ckpt, self.final, self.anchors))


def phase(workdir: str | os.PathLike, name: str) -> PhaseLayout:
    return PhaseLayout(phase_dir(workdir, name))


def has_final(path: str | os.PathLike) -> bool:
    """Whether a phase directory holds a committed final checkpoint."""
    return PhaseLayout(pathlib.Path(path)).has_final()


def begun(workdir: str | os.PathLike) -> bool:
    """Whether any phase of the workdir has written a checkpoint."""
    phases = pathlib.Path(workdir) / PHASES
    return phases.is_dir() and any(PhaseLayout(p).begun() for p in phases.iterdir()
                                   if p.is_dir())


def is_workdir(path: str | os.PathLike) -> bool:
    """Whether `path` looks like a jaxkd workdir (config.json and phases/)."""
    path = pathlib.Path(path)
    return config_path(path).is_file() and (path / PHASES).is_dir()


# -- atomic files ------------------------------------------------------------------------
def write_text_atomic(path: str | os.PathLike, text: str, *, process_index: int = 0) -> None:
    """Writes `text` through a temporary file and a rename, so readers never see half a
    file and a crash leaves the old one; only process 0 writes (pass the caller's index)."""
    if process_index != 0:
        return
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def write_json_atomic(path: str | os.PathLike, obj, *, process_index: int = 0) -> None:
    """`write_text_atomic` of `obj` as indented, key-sorted JSON."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True),
                      process_index=process_index)


def read_json(path: str | os.PathLike):
    """The JSON value of a file."""
    return json.loads(pathlib.Path(path).read_text())


def read_route(workdir: str | os.PathLike) -> dict[str, int]:
    """The greedy RCO route chosen so far: plan index (a string) -> anchor index."""
    path = route_path(workdir)
    return read_json(path) if path.exists() else {}


def remember_anchor(workdir: str | os.PathLike, index: int, anchor: int, *,
                    process_index: int = 0) -> None:
    """Records that plan[index] learns from anchor `anchor` (a resumed stage keeps it)."""
    route = read_route(workdir)
    route[str(index)] = anchor
    write_json_atomic(route_path(workdir), route, process_index=process_index)

LOCK_NAME = ".lock"
# errnos of a filesystem that cannot flock at all (not of a lock held by someone else)
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}
_HELD_FDS: set[int] = set()   # this process's lock descriptors, closed in forked children


def _close_in_child() -> None:
    # A child made by fork() (without exec) shares the open file and so the lock: were the
    # parent killed, the child would keep the workdir locked. Closing the child's copies
    # leaves the parent's lock in place (it belongs to the open file, not the descriptor).
    for fd in list(_HELD_FDS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_FDS.clear()


os.register_at_fork(after_in_child=_close_in_child)


def lock_path(workdir: str | os.PathLike, process_index: int = 0) -> pathlib.Path:
    """The lock file of `process_index` in `workdir` (`.lock`, or `.lock.<i>` for i > 0)."""
    name = LOCK_NAME if process_index == 0 else f"{LOCK_NAME}.{process_index}"
    return pathlib.Path(workdir) / name


def read_holder(path: str | os.PathLike) -> dict | None:
    """The record of a lock file ({'pid', 'host', 'process_index', 'started', ...}), or None
    if it is missing, empty or not (yet) a JSON object."""
    try:
        record = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _describe(record: dict | None, path: pathlib.Path) -> str:
    if not record:
        return f"a process whose record in {path} is not written yet"
    started = record.get("started", "?")
    since = record.get("started_unix")
    ago = ""
    if isinstance(since, (int, float)):
        ago = f" ({_duration(time.time() - since)} ago)"
    index = record.get("process_index")
    index = f", process index {index}" if index not in (None, 0) else ""
    return (f"pid {record.get('pid', '?')} on host {record.get('host', '?')}{index}, "
            f"started {started}{ago}")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class WorkdirLockedError(OSError):
    """Another live process holds this workdir's lock (one writer per workdir)."""

    def __init__(self, workdir: pathlib.Path, path: pathlib.Path, holder: dict | None):
        self.workdir, self.lock_path, self.holder = workdir, path, holder
        pid = (holder or {}).get("pid", "<pid>")
        host = (holder or {}).get("host", "<host>")
        super().__init__(
            f"workdir {workdir} is in use by another jaxkd run: {_describe(holder, path)} "
            f"holds its lock {path.name}. Wait for that run to end, or stop it (kill {pid} "
            f"on {host}) and rerun the same command to resume; the lock of a dead process is "
            "taken over automatically. To run something else meanwhile, use another --workdir.")

    def __reduce__(self):   # picklable across processes with its three fields
        return type(self), (self.workdir, self.lock_path, self.holder)


class WorkdirLock:
    """An exclusive, non-blocking lock on one process index's lock file of a workdir."""

    def __init__(self, workdir: str | os.PathLike, process_index: int = 0):
        self.workdir = pathlib.Path(workdir)
        self.process_index = int(process_index)
        self.path = lock_path(self.workdir, self.process_index)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "WorkdirLock":
        """Takes the lock or raises `WorkdirLockedError` at once (never waits)."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this WorkdirLock")
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise WorkdirLockedError(self.workdir, self.path,
                                         self._holder_record()) from None
            except OSError as err:
                os.close(fd)
                if err.errno not in _UNSUPPORTED:
                    raise
                log.warning("cannot lock %s (%s): this filesystem does not support flock; "
                            "running without the one-writer-per-workdir guard",
                            self.path, os.strerror(err.errno))
                return self
            # The file locked must still be the one at the path: if it was deleted or
            # replaced between open and flock, another process may hold the new one.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        _HELD_FDS.add(fd)
        try:
            self._write_record()
        except BaseException:
            self.release()
            raise
        return self

    def _holder_record(self) -> dict | None:
        # The holder writes its record just after taking the lock: give it a moment.
        for _ in range(20):
            record = read_holder(self.path)
            if record:
                return record
            time.sleep(0.05)
        return None

    def _write_record(self) -> None:
        now = time.time()
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "process_index": self.process_index,
            "started": datetime.datetime.fromtimestamp(now).astimezone().isoformat(
                timespec="seconds"),
            "started_unix": now,
        }
        data = (json.dumps(record, sort_keys=True) + "\n").encode()
        # In place, never through a rename: the lock belongs to this very file.
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def release(self) -> None:
        """Frees the lock (the file and its last record stay). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _HELD_FDS.discard(fd)
        os.close(fd)    # closing the only descriptor of the open file releases the flock

    def __enter__(self) -> "WorkdirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def lock(workdir: str | os.PathLike, process_index: int = 0) -> Iterator[WorkdirLock]:
    """Holds the workdir's lock for `process_index` for the duration of the block."""
    held = WorkdirLock(workdir, process_index).acquire()
    try:
        yield held
    finally:
        held.release()
