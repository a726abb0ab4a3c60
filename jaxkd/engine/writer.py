"""Metrics to a JSONL file and TensorBoard event files (process 0 only)."""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any, Mapping

import jax


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
        self.path = pathlib.Path(workdir) / "metrics.jsonl"
        self._tb = None
        # Opened at the first scalar: a writer that never writes leaves no event file and
        # no tensorboardX atexit hook (which fails on Python >= 3.12 for an unused writer:
        # "can't create new thread at interpreter shutdown").
        self._tb_dir = pathlib.Path(workdir) / "tensorboard" if self.enabled and tensorboard \
            else None

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

        A line cut short by a crash in the middle of a write is dropped too.

        Returns:
            The largest step among the dropped records of `phase` (0 when none).
        """
        if not self.enabled or not self.path.exists():
            return 0
        kept, lost = [], 0
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("phase") == phase and rec.get("step", 0) > step:
                lost = max(lost, rec["step"])
            else:
                kept.append(line)
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(self.path)
        return lost

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        self._tb_dir = None
