"""The raw-kernel limit: the training step of a bench model with no input pipeline and no Keras.

The data live in the graph (uint8 constants); each compiled call runs `--steps-per-call` steps
in a `tf.range` loop that gathers its batch by index from a per-epoch permutation, runs the
forward pass with plain TensorFlow ops (tf.matmul, tf.nn.conv2d, tf.nn.max_pool2d), takes the
gradients with tf.GradientTape and applies TensorFlow's fused optimizer kernels
(ResourceApplyGradientDescent, ResourceApplyAdam). This is what the same cores can do for the
model with nothing around the kernels: tftrain's rate over this one is how close it comes.

    python bench/baselines/raw_kernel.py --model dense --data mnist.npz --epochs 2 --threads 1 --one-op-at-a-time
    python bench/baselines/raw_kernel.py --model cnn --data images.npz --precision bfloat16
    python bench/baselines/raw_kernel.py --model table --data table.npz --hidden 64,64

`--model table` is an MLP over float feature vectors (x_train: examples x features, y_train:
class indices), standardized per feature with the training split's mean and variance as Keras's
Normalization layer does (tftrain's `data.normalize: per_channel`), trained with Adam.

`--precision bfloat16` computes in bfloat16 with float32 weights and a float32 output layer, as
Keras's mixed_bfloat16 policy does. The meter is tftrain's ThroughputMeter, as the other
baselines use.
"""

import argparse
import json
import math

import numpy as np
import tensorflow as tf

from tftrain.training.callbacks.throughput import ThroughputMeter  # measurement only

parser = argparse.ArgumentParser()
parser.add_argument("--model", choices=["dense", "cnn", "table"], required=True)
parser.add_argument("--data", required=True, help=".npz with x_train, y_train, x_test, y_test")
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: one per core)")
parser.add_argument("--one-op-at-a-time", action="store_true",
                    help="one inter-op thread too, as tftrain's cpu_threads: auto runs small steps")
parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
parser.add_argument("--hidden", default="64,64", help="table: the hidden layers' widths")
parser.add_argument("--steps-per-call", type=int, default=None, help="default: 128 dense and table, 8 cnn")
parser.add_argument("--limit", type=int, default=None, help="only the first N training examples")
parser.add_argument("--result", default=None, help="write measurements to this JSON file")
args = parser.parse_args()
tf.config.threading.set_intra_op_parallelism_threads(args.threads)
if args.one_op_at_a_time:
    tf.config.threading.set_inter_op_parallelism_threads(1)
tf.random.set_seed(args.seed)
BATCH, RATE, CALL = {"dense": (32, 0.01, 128), "cnn": (64, 0.001, 8), "table": (32, 0.001, 128)}[args.model]
CALL = args.steps_per_call or CALL
COMPUTE = tf.bfloat16 if args.precision == "bfloat16" else tf.float32

with np.load(args.data) as f:
    x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
if args.limit:
    x_train, y_train = x_train[:args.limit], y_train[:args.limit]
X, Y = tf.constant(x_train), tf.constant(y_train.reshape(-1).astype(np.int32))
N = len(x_train)
STEPS = N // BATCH  # full batches only: one trace


def glorot(shape):
    fan_in, fan_out = math.prod(shape[:-1]), shape[-1] * (math.prod(shape[:-2]) if len(shape) == 4 else 1)
    limit = math.sqrt(6 / (fan_in + fan_out))
    return tf.Variable(tf.random.uniform(shape, -limit, limit))


if args.model == "dense":
    weights = [glorot([784, 128]), tf.Variable(tf.zeros([128])), glorot([128, 10]), tf.Variable(tf.zeros([10]))]
elif args.model == "table":
    widths = [x_train.shape[1], *map(int, args.hidden.split(",")), int(y_train.max()) + 1]
    weights = [w for a, b in zip(widths, widths[1:]) for w in (glorot([a, b]), tf.Variable(tf.zeros([b])))]
    MEAN = tf.constant(x_train.mean(axis=0, dtype=np.float64), tf.float32)  # Keras's Normalization, adapted
    INV_STD = tf.constant(1 / np.maximum(np.sqrt(x_train.var(axis=0, dtype=np.float64)), 1e-7), tf.float32)
else:
    weights = [glorot([3, 3, 3, 32]), tf.Variable(tf.zeros([32])), glorot([3, 3, 32, 64]), tf.Variable(tf.zeros([64])),
               glorot([3, 3, 64, 64]), tf.Variable(tf.zeros([64])), glorot([1024, 64]), tf.Variable(tf.zeros([64])),
               glorot([64, 10]), tf.Variable(tf.zeros([10]))]
slots = [(tf.Variable(tf.zeros_like(w)), tf.Variable(tf.zeros_like(w))) for w in weights]
step_count = tf.Variable(0.0)


def forward(x):
    """Logits (float32) of a uint8 batch."""
    w = [tf.cast(v, COMPUTE) for v in weights[:-2]]
    if args.model == "table":
        h = tf.cast((tf.cast(x, tf.float32) - MEAN) * INV_STD, COMPUTE)
        for i in range(0, len(w), 2):
            h = tf.nn.relu(h @ w[i] + w[i + 1])
        return tf.cast(h, tf.float32) @ weights[-2] + weights[-1]
    h = tf.cast(x, COMPUTE) * tf.cast(1 / 255, COMPUTE)
    if args.model == "dense":
        h = tf.nn.relu(tf.reshape(h, [-1, 784]) @ w[0] + w[1])
    else:
        for i in range(0, 6, 2):
            h = tf.nn.relu(tf.nn.conv2d(h, w[i], 1, "VALID") + w[i + 1])
            if i < 4:
                h = tf.nn.max_pool2d(h, 2, 2, "VALID")
        h = tf.nn.relu(tf.reshape(h, [-1, 1024]) @ w[6] + w[7])
    return tf.cast(h, tf.float32) @ weights[-2] + weights[-1]  # the output layer in float32


def apply(gradients):
    if args.model == "dense":
        for w, g in zip(weights, gradients):
            tf.raw_ops.ResourceApplyGradientDescent(var=w.handle, alpha=RATE, delta=g)
        return
    step_count.assign_add(1.0)
    b1, b2 = 0.9, 0.999
    for w, g, (m, v) in zip(weights, gradients, slots):
        tf.raw_ops.ResourceApplyAdam(var=w.handle, m=m.handle, v=v.handle, beta1_power=b1 ** step_count,
                                     beta2_power=b2 ** step_count, lr=RATE, beta1=b1, beta2=b2, epsilon=1e-7, grad=g)


@tf.function
def train(order, first, n):
    """Steps first .. first+n-1 of an epoch whose order is `order`; the mean loss and accuracy."""
    loss_sum, correct = tf.constant(0.0), tf.constant(0.0)
    for i in tf.range(first, first + n):
        idx = order[i * BATCH:(i + 1) * BATCH]
        x, y = tf.gather(X, idx), tf.gather(Y, idx)
        with tf.GradientTape() as tape:
            logits = forward(x)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        apply(tape.gradient(loss, weights))
        loss_sum += loss
        correct += tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32))
    return loss_sum, correct


meter = ThroughputMeter(BATCH, STEPS * BATCH)
rng = np.random.default_rng(args.seed)
for epoch in range(args.epochs):
    order = tf.constant(rng.permutation(N))
    loss_sum, correct = 0.0, 0.0
    meter.epoch_begin()
    for first in range(0, STEPS, CALL):
        n = min(CALL, STEPS - first)
        loss, hits = train(order, tf.constant(first), tf.constant(n))
        loss_sum, correct = loss_sum + float(loss), correct + float(hits)
        meter.steps_done(first + n - 1)
logits = np.concatenate([forward(x_test[i:i + 1000]).numpy() for i in range(0, len(x_test), 1000)])
result = {**meter.result(), "loss": loss_sum / STEPS, "accuracy": correct / (STEPS * BATCH),
          "test_accuracy": float(np.mean(logits.argmax(-1) == y_test.reshape(-1))),
          "threads": tf.config.threading.get_intra_op_parallelism_threads(),
          "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}
print(json.dumps(result))
if args.result:
    with open(args.result, "w") as f:
        json.dump(result, f)
