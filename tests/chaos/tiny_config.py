"""A tiny three-generation born-again run for the chaos tests (seconds on one CPU device).

    python -m jaxkd.main --config=tests/chaos/tiny_config.py --workdir=/tmp/chaos \
        --config.data.path=/tmp/tiny.npz

`data.path` must point at an npz written by `tests.helpers.write_tiny_npz` (64 training
and 32 test images of 4 classes): 4 steps per epoch, 2 epochs per generation, a
checkpoint after every step, so that a random kill often lands inside a checkpoint write.
"""

from jaxkd.config import default_config


def get_config():
    c = default_config()
    c.method = "born_again"
    c.generations = 2
    c.model = "resnet8"
    c.data.source = "npz"
    c.data.path = ""
    c.batch_size = 16
    c.eval_batch_size = 16
    c.num_epochs = 2
    c.schedule.name = "cosine"
    c.schedule.base_lr = 0.05
    c.schedule.boundaries = ()
    c.checkpoint_every_steps = 1
    c.keep_checkpoints = 2
    c.log_every_steps = 3           # windows that straddle checkpoints and epochs
    c.progress_bar = False
    c.write_report = False
    return c
