"""`python tests/paced_tftrain.py ARGS...` runs `tftrain ARGS...`, and after every training call
prints `@step N` on stderr and waits for a line on its stdin before it goes on.

A test reading those lines can act at a step of its choice (send a signal, then the line):
the process waits at that step meanwhile, so nothing races the training. The pace comes in
through tftrain's public hook for extra callbacks (tftrain.cli.main); it changes no numbers.
With stdin closed it does not wait.
"""

import sys

import keras

from tftrain.cli import main


class Pace(keras.callbacks.Callback):
    """`@step N` after each training call (N: training steps done, counted from the epoch and the
    batch index: optimizer.iterations counts weight updates), then one stdin line."""

    epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self.epoch * self.params["steps"] + batch + 1
        print(f"@step {step}", file=sys.stderr, flush=True)
        sys.stdin.readline()


if __name__ == "__main__":
    main(sys.argv[1:], callbacks=[Pace()])
