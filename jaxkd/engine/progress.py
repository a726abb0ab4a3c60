"""Run-level progress: the ETA of a run, and log lines that stay off an open tqdm bar.

`RunClock` keeps the measured seconds per step of the phases so far (compile excluded,
evaluations included) and turns the steps still to run into an ETA. `tqdm_logging()`
routes the console log handlers (absl's, the CLI's, and any `logging.StreamHandler` on
stderr/stdout of the root or `jaxkd` logger) through `tqdm.write` while a bar is open,
so a log line clears the bar, starts at a line start, and the bar is drawn again below.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from typing import Iterator

import jax


def bar(enabled: bool, total: int | None, initial: int, desc: str, unit: str = "step",
         file=None):
    """A tqdm bar (`config.progress_bar`), or None when disabled or off process 0."""
    if not enabled or jax.process_index() != 0:
        return None
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True,
                leave=False, file=file or sys.stderr)


def format_hms(seconds: float) -> str:
    """`HH:MM:SS` (hours may exceed 24: `31:05:00`)."""
    seconds = max(int(round(seconds)), 0)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclasses.dataclass
class RunClock:
    """What the run-level ETA is computed from.

    Attributes:
        seconds_per_step: phase name -> measured wall seconds per train step in this
            process (compile time excluded; the phase's evaluations included).
        steps_after: train steps of the phases after the running one (set by the Runner).
    """

    seconds_per_step: dict = dataclasses.field(default_factory=dict)
    steps_after: int = 0

    def rate(self) -> float | None:
        """The newest measurement (seconds per step), or None before the first epoch."""
        return next(reversed(self.seconds_per_step.values()), None)

    def eta(self, steps: int) -> float | None:
        rate = self.rate()
        return None if rate is None else rate * steps

    def describe(self, steps: int) -> str:
        """'ETA for the run HH:MM:SS', or 'ETA after the first epoch' with no measurement."""
        eta = self.eta(steps)
        return "ETA after the first epoch" if eta is None else \
            f"ETA for the run {format_hms(eta)}"


class _TqdmStream:
    """A text stream whose complete lines go out through `tqdm.write` (bar-aware)."""

    def __init__(self, stream):
        self.stream, self._buffer = stream, ""

    def write(self, text: str) -> int:
        from tqdm import tqdm
        self._buffer += text
        if "\n" in self._buffer:
            head, _, self._buffer = self._buffer.rpartition("\n")
            tqdm.write(head + "\n", file=self.stream, end="")
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            from tqdm import tqdm
            tqdm.write(self._buffer, file=self.stream, end="")
            self._buffer = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return getattr(self.stream, "isatty", lambda: False)()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _console_handlers() -> Iterator[logging.StreamHandler]:
    """StreamHandlers writing to stdout/stderr: the root's and jaxkd's, absl's inner one."""
    seen = set()
    for logger in (logging.getLogger(), logging.getLogger("jaxkd")):
        for handler in logger.handlers:
            inner = getattr(handler, "python_handler", handler)   # absl's ABSLHandler
            if isinstance(inner, logging.StreamHandler) and id(inner) not in seen and \
                    inner.stream in (sys.stdout, sys.stderr):
                seen.add(id(inner))
                yield inner


@contextlib.contextmanager
def tqdm_logging():
    """While open, console log lines (and other stderr writes) go through `tqdm.write`.

    sys.stderr is swapped too: absl's handler compares its stream with sys.stderr to
    decide whether to write a line twice, and stray writes (warnings) must not glue onto
    the bar either. The bar itself must write to the real stream (create it first).
    """
    real_err, real_out = sys.stderr, sys.stdout
    wrapped = {id(real_err): _TqdmStream(real_err), id(real_out): _TqdmStream(real_out)}
    swapped = []
    for handler in _console_handlers():
        swapped.append((handler, handler.stream))
        handler.stream = wrapped[id(handler.stream)]
    sys.stderr = wrapped[id(real_err)]
    try:
        yield
    finally:
        sys.stderr = real_err
        for handler, stream in swapped:
            handler.stream = stream
        for stream in wrapped.values():
            stream.flush()
