"""JAX's persistent compilation cache, on by default for the command line.

A second run of the same programs (a rerun, the next config of a grid, the generations of
another run of the same model) loads the compiled train/eval/init programs from disk
instead of compiling them again (BENCHMARKS.md, "Start-up"). The CLI calls `enable()`
before anything compiles. A user's own `JAX_COMPILATION_CACHE_DIR` (or a cache folder
already set in `jax.config`) is kept as it is; `JAXKD_NO_COMPILE_CACHE=1` turns jaxkd's
default off.
"""

from __future__ import annotations

import logging
import os
import pathlib

import jax

log = logging.getLogger(__name__)

OPT_OUT_ENV = "JAXKD_NO_COMPILE_CACHE"
# Programs that compile faster than this are not written (JAX's own default is 1 s);
# jaxkd's smallest train steps take a few seconds, init programs about one.
MIN_COMPILE_TIME_S = 0.5


def default_dir() -> pathlib.Path:
    """`$XDG_CACHE_HOME/jaxkd/jax_compilation_cache` (`~/.cache/...` without XDG)."""
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "jaxkd" / "jax_compilation_cache"


def _configured_dir() -> str | None:
    """The cache folder already set in jax.config (by the user's code or environment)."""
    return getattr(jax.config, "jax_compilation_cache_dir", None) or None


def opted_out() -> bool:
    return os.environ.get(OPT_OUT_ENV, "").strip().lower() not in ("", "0", "false", "no")


def enable(path: str | None = None) -> str | None:
    """Turns the persistent compilation cache on; returns the folder in use (None: off).

    Args:
        path: the cache folder; None: the user's own `JAX_COMPILATION_CACHE_DIR` if set,
            else `default_dir()`.

    A user's own setting always wins: `JAX_COMPILATION_CACHE_DIR` in the environment (JAX
    reads it itself) or a folder already set in `jax.config` is kept, and so is
    `JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`. With `JAXKD_NO_COMPILE_CACHE=1` nothing
    is changed and None is returned. A folder that cannot be created is a warning (the
    run goes on, uncached), not an error.
    """
    if opted_out():
        log.info("persistent compilation cache off (%s=%s)", OPT_OUT_ENV,
                 os.environ[OPT_OUT_ENV])
        return None
    own = os.environ.get("JAX_COMPILATION_CACHE_DIR") or _configured_dir()
    if own:
        log.info("persistent compilation cache: %s (the user's own setting)", own)
        return str(own)
    folder = pathlib.Path(path).expanduser() if path else default_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        log.warning("persistent compilation cache off: cannot create %s (%s); set %s=1 "
                    "to silence this", folder, err, OPT_OUT_ENV)
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_S)
    log.info("persistent compilation cache: %s (%s=1 turns it off)", folder, OPT_OUT_ENV)
    return str(folder)
