"""A tiny three-generation born-again run for the chaos tests (seconds on one CPU device).

    python -m jaxkd.main --config=tests/chaos/tiny_config.py --workdir=/tmp/chaos \
        --config.data.path=/tmp/tiny.npz

`data.path` must point at an npz written by `tests.helpers.write_tiny_npz` (64 training
and 32 test images of 4 classes): 4 steps per epoch, 2 epochs per generation, a
checkpoint after every step, so that a random kill often lands inside a checkpoint write.
"""

from tests.helpers import tiny_config


def get_config():
    return tiny_config("", "born_again", generations=2, checkpoint_every_steps=1,
                       keep_checkpoints=2,
                       log_every_steps=3)   # windows that straddle checkpoints and epochs
