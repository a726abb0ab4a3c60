"""Metrics to a JSONL file and TensorBoard event files (process 0 only)."""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any, Mapping

import jax

from jaxkd import workdir as workdir_lib

RECORD_KEYS = ("phase", "kind", "step")


def _record_problem(rec: Any) -> str:
    """Why `rec` (a parsed line) is not a record jaxkd writes; '' when it is one."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"
    missing = [k for k in RECORD_KEYS if k not in rec]
    if missing:
        return f"no {', '.join(repr(k) for k in missing)}"
    for key in ("phase", "kind"):
        if not isinstance(rec[key], str):
            return f"{key!r} is {rec[key]!r}, not a string"
    step = rec["step"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return f"'step' is {step!r}, not a non-negative integer"
    return ""


def _is_cut_line(raw: bytes) -> bool:
    """Whether an unterminated last line is the start of a record cut short by a kill
    (jaxkd writes ASCII JSON objects, so such a line is ASCII, starts with '{' and does
    not parse)."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return False
    if not text.startswith("{"):
        return False
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return True
    return False


def read_records(path: pathlib.Path) -> list[tuple[str, dict]]:
    """The (line, record) pairs of a `metrics.jsonl`, in order.

    Blank lines are skipped, and so is a last line cut short by a kill in the middle of a
    write (no newline, an unfinished JSON object). Any other line that is not a record
    as jaxkd writes them (a JSON object with a string 'phase' and 'kind' and an integer
    'step') raises a ValueError naming the file, the line number and what to do.
    """
    path = pathlib.Path(path)
    data = path.read_bytes()
    lines = data.split(b"\n")
    out = []
    for number, raw in enumerate(lines, start=1):
        last = number == len(lines)
        if not raw.strip() or (last and _is_cut_line(raw)):
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
            problem = _record_problem(rec)
        except UnicodeDecodeError:
            problem = "not UTF-8 text"
        except json.JSONDecodeError as err:
            problem = f"not JSON ({err.msg})"
        if problem:
            raise ValueError(
                f"{path}, line {number}: {problem}; every line must be a JSON object with "
                f"a string 'phase' and 'kind' and an integer 'step', as jaxkd writes them. "
                f"Move the file away (mv {path} {path}.bad) and rerun: the metrics of the "
                f"finished phases are also in each phase's final checkpoint "
                f"(phases/<phase>/final, meta 'history')")
        out.append((raw.decode("utf-8"), rec))
    return out


def _summary_writer(directory: pathlib.Path):
    """A tensorboardX writer, imported without pulling PyTorch into the process.

    tensorboardX imports torch when it is installed; torch's OpenMP runtime next to XLA's
    thread pools crashed the process here (segfault), so the import is hidden from it.
    """
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # makes `import torch` raise ImportError
    try:
        from tensorboardX import SummaryWriter
    finally:
        if hide:
            del sys.modules["torch"]
    return SummaryWriter(str(directory))


class MetricWriter:
    """Appends one JSON record per call to `metrics.jsonl` and mirrors scalars to TensorBoard."""

    def __init__(self, workdir: pathlib.Path, *, tensorboard: bool = True):
        self.enabled = jax.process_index() == 0
        self.path = workdir_lib.metrics_path(workdir)
        self._tb = None
        # Opened at the first scalar: a writer that never writes leaves no event file and
        # no tensorboardX atexit hook (which fails on Python >= 3.12 for an unused writer:
        # "can't create new thread at interpreter shutdown").
        self._tb_dir = pathlib.Path(workdir) / "tensorboard" if self.enabled and tensorboard \
            else None
        if self.enabled and self.path.exists():
            read_records(self.path)   # a damaged file is refused now, before any compile

    def write(self, record: Mapping[str, Any]) -> None:
        """Writes `record` (must hold 'phase', 'kind' and 'step'); scalars go to TensorBoard."""
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(dict(record), sort_keys=True) + "\n")
        if self._tb_dir is not None:
            prefix = f"{record['phase']}/{record['kind']}"
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    if self._tb is None:
                        self._tb = _summary_writer(self._tb_dir)
                    self._tb.add_scalar(f"{prefix}/{key}", value, record["step"])

    def drop_after(self, phase: str, step: int) -> int:
        """Forgets records of `phase` newer than `step` (work lost in a crash, redone).

        A line cut short by a crash in the middle of a write is dropped too; any other
        line that is not a record raises a ValueError naming the file and the line.

        Returns:
            The largest step among the dropped records of `phase` (0 when none).
        """
        if not self.enabled or not self.path.exists():
            return 0
        kept, lost = [], 0
        for line, rec in read_records(self.path):
            if rec["phase"] == phase and rec["step"] > step:
                lost = max(lost, rec["step"])
            else:
                kept.append(line)
        workdir_lib.write_text_atomic(self.path, "".join(line + "\n" for line in kept))
        return lost

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        self._tb_dir = None
