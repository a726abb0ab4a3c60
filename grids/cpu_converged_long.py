"""CPU protocol at convergence, long: the papers' effects where the baseline memorises.

Issue 18, part 2. `grids/cpu_converged.py` (50 images per class, 32 epochs) left the
baseline underfitting (training top-1 37% against 25% test). Here each phase trains a
quarter-size training set for four times as many epochs, at the same cost per phase,
until the baseline fits its training images (sizing run: 92.7% clean training top-1
against 19.8% test, the test curve flat over the last 32 epochs: 18.95 / 19.69 / 19.77%
at epochs 96 / 112 / 128), the regime the papers' teachers are in.

Command (see RESULTS.md for the measured wall time)::

    JAXKD_CIFAR100=/path/cifar-100-binary.tar.gz \
    python -m jaxkd.grid --grid=grids/cpu_converged_long.py \
        --root=/work/kd_runs/cpu_converged_long --seeds=3

Sizing run (one seed, the CE baseline: `cpu_converged.base(25, 128, 16)` with
`method = 'baseline'`, trained by `jaxkd.run.run`): ResNet-8, 16 x 16, 25 images per
class, 128 epochs: 138 s on 2 CPU cores, then `jaxkd evaluate --workdir=W --split=train`
for the clean training top-1 (RESULTS.md has both sizing runs).

Everything else as `grids/cpu_converged.py`: real CIFAR-100, all 100 classes at 16 x 16,
a stratified subset of TRAIN_PER_CLASS training images per class drawn with each seed,
the full 10 000-image test set, ResNet-8, batch 64, SGD Nesterov 0.9, wd 5e-4, one cosine
from 0.1 to 0 per phase (SD: 4 cycles of EPOCHS / 4 epochs), pad-2 crop + flip; the same
configs and paired comparisons (`PAIRS`).
"""

import pathlib

from jaxkd.grid import load_module

_SHORT = load_module(pathlib.Path(__file__).with_name("cpu_converged.py"))

TRAIN_PER_CLASS = 25
EPOCHS = 128
EVAL_EVERY = 16
PAIRS = _SHORT.PAIRS


def get_grid():
    return _SHORT.get_grid(train_per_class=TRAIN_PER_CLASS, epochs=EPOCHS,
                           eval_every=EVAL_EVERY)
