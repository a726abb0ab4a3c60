"""The core works without the optional extras: TFDS (`jaxkd[tfds]`) and TensorFlow.

Run here with those packages blocked from import (`sys.modules[name] = None`), so the
test means the same in the full test environment and in CI's core-only newest-JAX venv.
"""
import subprocess
import sys

from tests.conftest import REPO

_PROGRAM = r"""
import sys
sys.modules["tensorflow_datasets"] = None     # import raises ImportError
sys.modules["tensorflow"] = None
import jaxkd.losses, jaxkd.main, jaxkd.run, jaxkd.report   # the core imports
from jaxkd import data
from jaxkd.data.dataset import DataUnavailableError
sample = data.load_splits(dict(source="sample"), seed=0)
assert sample.num_classes == 10
try:
    data.load_splits(dict(source="tfds", name="cifar100"), seed=0)
except DataUnavailableError as err:
    assert "pip install 'jaxkd[tfds]'" in str(err), err
    assert "\n" not in str(err)
    print("OK")
"""


def test_core_imports_and_local_data_without_tfds():
    proc = subprocess.run([sys.executable, "-c", _PROGRAM], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("OK")
