"""Benchmarks of jaxkd: step throughput, KD overhead, a PyTorch reference, roofline, whole runs,
the data pipeline and data-parallel scaling.

Every script runs on its own with small defaults and writes one JSON record::

    python -m benchmarks.step_throughput --help
    python -m benchmarks.run --suite=cpu        # the whole CPU suite, a table and JSON

The numbers and the commands that produced them are in BENCHMARKS.md at the repository
root. Scripts import JAX lazily (inside `main`) so that `--xla_flags` and fake-device counts
can be applied before the backend starts.
"""
