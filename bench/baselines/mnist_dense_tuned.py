"""Baseline 3: the dense MNIST model as an expert would hand-tune Keras for it, without tftrain.

The quickstart's model, optimizer and batch size, with every knob the Keras and tf.data guides
offer for a small model: uint8 arrays kept as they are and rescaled inside the model, a
tf.data pipeline (shuffled each epoch, batched, prefetched), 128 steps per compiled call
(`steps_per_execution`) and one intra-op thread (splitting a 3M multiply-add step across cores
costs more than it saves). This is "the best hand-tuned fused loop" that tftrain is compared with.

    python bench/baselines/mnist_dense_tuned.py --data mnist.npz --epochs 2 --result out.json
"""

import argparse
import json

import numpy as np
import tensorflow as tf

from tftrain.training.callbacks.throughput import ThroughputCallback  # measurement only

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="a Keras-format mnist.npz")
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--limit", type=int, default=None, help="use the first N training examples")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--threads", type=int, default=1, help="intra-op threads (0: one per core)")
parser.add_argument("--result", default=None, help="write measurements to this JSON file")
args = parser.parse_args()
tf.config.threading.set_intra_op_parallelism_threads(args.threads)
tf.keras.utils.set_random_seed(args.seed)

with np.load(args.data) as f:
    x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
if args.limit:
    x_train, y_train = x_train[:args.limit], y_train[:args.limit]

train = (tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train), seed=args.seed)
         .batch(32).prefetch(tf.data.AUTOTUNE))
model = tf.keras.models.Sequential([
    tf.keras.layers.Input((28, 28), dtype="uint8"),
    tf.keras.layers.Rescaling(1 / 255),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(128, activation="relu"),
    tf.keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
              steps_per_execution=128)

meter = ThroughputCallback(batch_size=32, examples_per_epoch=len(x_train))
history = model.fit(train, epochs=args.epochs, callbacks=[meter], verbose=0)
if args.result:
    test_loss, test_accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    with open(args.result, "w") as f:
        json.dump({**meter.result(),
                   "loss": history.history["loss"][-1], "accuracy": history.history["accuracy"][-1],
                   "test_loss": test_loss, "test_accuracy": test_accuracy,
                   "threads": tf.config.threading.get_intra_op_parallelism_threads()}, f)
