"""Tolerant teacher D(0.6, 0.6) on ILSVRC2012: ResNet-18, a TSD patriarch and 5 generations.

Command:

    python -m jaxkd.main --config=configs/tt_resnet18_imagenet.py --workdir=/tmp/tt_resnet18_imagenet

Data: ILSVRC2012 through TFDS (`data.source='tfds'`, `data.name='imagenet2012'`), streamed
and decoded on the host; TFDS cannot download it: put ILSVRC2012_img_train.tar and
ILSVRC2012_img_val.tar into <data_dir>/downloads/manual and let TFDS prepare it
(`--config.data.data_dir=...` if not ~/tensorflow_datasets). Accuracy is reported on
the 50 000 validation images (single 224 x 224 centre crop).

Expected wall time (an estimate, not measured): 100 epochs of ResNet-18 (3.4 GFLOPs per
forward) take about 10-16 h per generation on one A100-class GPU, bounded by host JPEG
decoding (~2500 images/s) rather than by the GPU: roughly 3-4 days for the 6 phases.

Paper number: Yang et al., "Knowledge Distillation in Generations", Table 5 (top-1/top-5
error): D(0.6,0.6) patriarch 32.52/11.23, Gen #1 30.28/10.23, ..., Gen #5 29.60/10.11
vs the baseline 30.50/11.07; ensembles 30.01/9.98 (Gen #1) ... 28.08/9.23 (Gen #5)
(those include the patriarch; jaxkd's `bane` ensemble averages generations 1..M).
Table 6 gives the same as accuracies (Gen #5: 70.40/89.89).

Settings ([TT] "The ILSVRC2012 Dataset"): SGD Nesterov 0.9, wd 1e-4, batch 1024, 100
epochs, lr 0.1 divided by 10 after epochs 30, 60 and 90; K = 5, u = 0.6, lambda = 0.6.
Deviation: the paper's augmentation (rescale + crop, mirror, slight rotation, aspect-ratio
change, pixel jittering, after Hu et al.) is approximated by jaxkd's 'imagenet'
augmentation (random-resized crop to 224 + horizontal flip).

LSR baseline (one generation, eps = 0.1, Szegedy et al. 2016):
`--config.method=baseline --config.loss.label_smoothing=0.1`. The LSR-0.6 / CP-0.6
processes of [TT] Figure 2 and Tables 2-3 swap the patriarch:
`--config.tolerant_teacher.patriarch_loss=label_smoothing` (eps =
`tolerant_teacher.label_smoothing`, 0.1) or `=confidence_penalty` (beta =
`tolerant_teacher.beta`, 0.1); see configs/tt_resnet110_lsr.py and tt_resnet110_cp.py.
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.imagenet(c)
    presets.cross_entropy(c)             # declares loss.label_smoothing
    c.model = "resnet18"
    c.batch_size = 1024
    c.num_epochs = 100
    presets.sgd(c, weight_decay=1e-4)
    presets.step_schedule(c, 0.1, (30, 60, 90))
    presets.tolerant_teacher(c, u=0.6, label_weight=0.6, generations=5)
    return c
