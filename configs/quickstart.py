"""Quickstart: a ResNet-8 teacher and a born-again ResNet-8 student on the bundled sample.

Command (no download; its measured time: README.md, "Two commands"):

    python -m jaxkd.main --config=configs/quickstart.py --workdir=/tmp/jaxkd_quickstart

The sample is a balanced subset of real CIFAR-10 images shipped inside the package
(jaxkd/data/sample). Expect low accuracies (tens of percent): the point is the whole
pipeline (teacher, student from the teacher's checkpoint, results table, report), not the
number. Paper numbers: see the per-paper configs.
"""

from jaxkd.config import default_config


def get_config():
    c = default_config()
    c.method = "born_again"
    c.generations = 1
    c.born_again.variant = "ban"
    c.model = "resnet8"
    c.data.source = "sample"
    c.batch_size = 64
    c.eval_batch_size = 250
    c.num_epochs = 8
    c.schedule.name = "cosine"
    c.schedule.base_lr = 0.1
    c.schedule.boundaries = ()
    c.optimizer.weight_decay = 5e-4
    c.log_every_steps = 20
    return c
