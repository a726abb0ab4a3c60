"""A tiny one-stage RCO run for the chaos tests: a teacher keeping an anchor every epoch,
then two student stages, each continuing the previous one and following the next anchor.

    python -m jaxkd.main --config=tests/chaos/tiny_rco_config.py --workdir=/tmp/chaos_rco \
        --config.data.path=/tmp/tiny.npz

Like `tiny_config.py` (three phases, a checkpoint after every step), with anchor
checkpoints, `continue` phases and teachers read back from disk.
"""

from tests.chaos import tiny_config


def get_config():
    c = tiny_config.get_config()
    c.method = "rco"
    c.generations = 0
    c.rco.mode = "one_stage"
    c.rco.anchor_every_epochs = 1
    c.rco.teacher_epochs = 2
    c.rco.teacher_lr = 0.05
    return c
