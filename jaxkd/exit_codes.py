"""What the command line does with each kind of failure: one line and an exit code.

| code | failure |
|---|---|
| 2 | bad input: config, data, checkpoint, workdir (a ValueError naming the field or file) |
| 3 | a non-finite loss, gradient or update (`config.nonfinite='stop'`) |
| 4 | a multi-process run lost or never saw a peer |
| 5 | the environment: data that cannot be had, a workdir held by another process, a full
      disk, a read-only or inaccessible workdir |

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno

from jaxkd.data.dataset import DataUnavailableError
from jaxkd.engine.loop import NonFiniteError
from jaxkd.engine.rendezvous import PeerMissingError
from jaxkd.workdir import WorkdirLockedError

BAD_INPUT, NON_FINITE, MULTI_PROCESS, ENVIRONMENT = 2, 3, 4, 5

# OSErrors that say something about the machine, not about jaxkd.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _environment_cause(err: BaseException) -> OSError | None:
    """The OSError of a full disk or a read-only/forbidden path in `err`'s chain, if any."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _ENVIRONMENT_ERRNOS:
            return err
        if "No space left on device" in str(err):
            return OSError(errno.ENOSPC, "No space left on device")
        err = err.__cause__ or err.__context__
    return None


def classify(err: BaseException) -> tuple[int, str] | None:
    """(exit code, one-line message) for a failure the user can act on, else None."""
    if isinstance(err, (DataUnavailableError, WorkdirLockedError)):
        return ENVIRONMENT, str(err)
    env = _environment_cause(err)
    if env is not None:
        where = f": {env.filename}" if getattr(env, "filename", None) else ""
        hint = ("free some space (or point --workdir elsewhere) and rerun the same command: "
                "committed checkpoints are kept" if env.errno in (errno.ENOSPC, errno.EDQUOT)
                else "make the workdir writable or choose another --workdir")
        return ENVIRONMENT, f"{env.strerror or env}{where}; {hint}"
    if isinstance(err, ValueError):
        return BAD_INPUT, str(err)
    if isinstance(err, NonFiniteError):
        return NON_FINITE, str(err)
    if isinstance(err, PeerMissingError):
        return MULTI_PROCESS, str(err)
    return None
