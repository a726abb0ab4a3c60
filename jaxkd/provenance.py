"""What produced a run: code version, library versions and devices.

Every invocation of a run appends one record to `provenance.jsonl` in the workdir before it
trains anything, and `results.json` repeats the list under `provenance`. A resumed run so
shows every code version that contributed, e.g. when a long grid ran while the tree
changed (a commit hash with `git_dirty: true` means uncommitted edits were in use).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import pathlib
import platform
import subprocess

import jax

from jaxkd import workdir as workdir_lib

_PACKAGES = ("jaxkd", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex")
_REPO = pathlib.Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(_REPO), *args], capture_output=True,
                             text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def code_version() -> dict:
    """The git commit of the jaxkd checkout and whether its tracked files were edited.

    Both are None for an installed (non-checkout) jaxkd.
    """
    commit = _git("rev-parse", "HEAD") if (_REPO / ".git").exists() else None
    dirty = None
    if commit is not None:
        status = _git("status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status)
    return {"git_commit": commit, "git_dirty": dirty}


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect() -> dict:
    """One provenance record for this process (cheap: no device work)."""
    device = jax.devices()[0]
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            **code_version(),
            "versions": {p: _version(p) for p in _PACKAGES},
            "python": platform.python_version(),
            "backend": jax.default_backend(), "device_kind": device.device_kind,
            "devices": jax.device_count(), "processes": jax.process_count()}


def record(workdir: pathlib.Path) -> None:
    """Appends this invocation's record to `workdir/provenance.jsonl` (process 0 writes)."""
    if jax.process_index() == 0:
        with workdir_lib.provenance_path(workdir).open("a") as f:
            f.write(json.dumps(collect(), sort_keys=True) + "\n")


def read(workdir: pathlib.Path) -> list[dict]:
    """The records in `workdir/provenance.jsonl`; a torn last line (a crash) is skipped."""
    path = workdir_lib.provenance_path(workdir)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
