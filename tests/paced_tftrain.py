"""`python tests/paced_tftrain.py ARGS...` runs `tftrain ARGS...` with a pause and a line
`@step N` on stderr after every training step, so a test can kill it at a step of its choice.

The pause sits in the progress callback, outside the computation: it changes no numbers.
"""

import os
import sys
import time

import keras

from tftrain.cli import main
from tftrain.training import callbacks

PAUSE = float(os.environ.get("TFTRAIN_TEST_PAUSE", "0.05"))  # seconds per step: time to act on a line
_step_end = callbacks.ProgressCallback.on_train_batch_end


def _paced(self, batch, logs=None):
    _step_end(self, batch, logs)
    step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
    print(f"@step {step}", file=sys.stderr, flush=True)
    time.sleep(PAUSE)


callbacks.ProgressCallback.on_train_batch_end = _paced

if __name__ == "__main__":
    sys.argv[0] = "tftrain"
    main()
