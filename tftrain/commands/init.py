"""`tftrain init`: commented starter configs, one per kind of problem.

Each file starts with the line that points editors using the YAML language server at the JSON
Schema (`tftrain schema --output tftrain.schema.json`), for completion and checks as you type.
"""

from __future__ import annotations

import os
from pathlib import Path
from string import Template

from tftrain.errors import UserError
from tftrain.runs import atomic_write, check_output


def _training(loop: str, epochs: int, monitor: str) -> str:
    """The `training:` block, its comments aligned with the rest of the template."""
    lines = [
        (f"loop: {loop}", "fit (model.fit) | custom (a tf.GradientTape loop): same outputs"),
        (f"epochs: {epochs}", "passes over the training data"),
        ("# steps: 1000", "train a fixed number of steps instead of epochs"),
        ("# log_every: 100", "steps per progress line / history row in steps mode"),
        (f"# early_stopping: {{monitor: {monitor}, patience: 3}}", ""),
        (f"checkpoint: {{monitor: {monitor}, mode: auto}}", "which metric picks checkpoints/best.keras"),
    ]
    out = "training:\n"
    for text, comment in lines:
        if not comment:
            out += f"  {text}\n"
        elif len(text) < 27:
            out += f"  {text:<27}# {comment}\n"
        else:  # too long to share the comment column: the comment goes above
            out += f"  # {comment}\n  {text}\n"
    return out


TEMPLATES: dict[str, str] = {
    "fashion_mnist": """\
# Fashion-MNIST clothes with a small dense network: Flatten -> Dense(128, relu) -> Dense(10, softmax)
# (the TensorFlow "basic classification" tutorial).
# Check it:  tftrain validate $path     Train it:  tftrain run $path
name: fashion-mnist-dense    # run directories are called <name>-<date>-<time>
seed: 0                      # same seed, same run; null picks one and records it
data:
  dataset: fashion_mnist     # reads data.path, else ~/.keras/datasets/fashion-mnist, else Debian's
                             # /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist,
                             # no network needed), else downloads the four files
  # path: /data/fashion-mnist
  batch_size: 32
  validation: test           # validate on the test split; or a fraction such as 0.1, or none
  # limit: 1000              # use only the first N training examples (quick experiments)
model:
  type: dense
  hidden: [128]              # one hidden layer of 128 units; [256, 128] for two
  activation: relu
  output_activation: softmax # probabilities; use null (logits) with from_logits: true below
  dropout: 0.0
loss: sparse_categorical_crossentropy   # integer labels 0..9
optimizer: {name: adam, learning_rate: 0.001}   # or {name: sgd, learning_rate: 0.01, momentum: 0.9}
metrics: [accuracy]
""" + _training("fit", 10, "val_loss"),
    "mnist": """\
# MNIST digits with a small dense network: Flatten -> Dense(128, relu) -> Dense(10, softmax).
# Check it:  tftrain validate $path     Train it:  tftrain run $path
name: mnist-dense            # run directories are called <name>-<date>-<time>
seed: 0                      # same seed, same run; null picks one and records it
data:
  dataset: mnist             # reads data.path, else ~/.keras/datasets/mnist.npz, else downloads it
  # path: /data/mnist.npz
  batch_size: 32
  validation: test           # validate on the test split; or a fraction such as 0.1, or none
  # limit: 1000              # use only the first N training examples (quick experiments)
model:
  type: dense
  hidden: [128]              # one hidden layer of 128 units; [256, 128] for two
  activation: relu
  output_activation: softmax # probabilities; use null (logits) with from_logits: true below
  dropout: 0.0
loss: sparse_categorical_crossentropy   # integer labels 0..9
optimizer: {name: sgd, learning_rate: 0.01}   # or {name: adam, learning_rate: 0.001}
metrics: [accuracy]
""" + _training("fit", 5, "val_loss"),
    "cifar10": """\
# CIFAR-10 images with the TensorFlow tutorial's CNN (3 conv layers, 122,570 parameters).
# Check it:  tftrain validate $path     Train it:  tftrain run $path
name: cifar10-cnn            # run directories are called <name>-<date>-<time>
seed: 0                      # same seed, same run; null picks one and records it
data:
  dataset: cifar10           # reads data.path, else ~/.keras/datasets/cifar-10-batches-py, else downloads it
  # path: /data/cifar-10-batches-py
  batch_size: 64
  validation: test           # validate on the test split; or a fraction such as 0.1, or none
model:
  type: cnn
  conv: [32, 64, 64]         # filters of each Conv2D layer (max-pooling between them)
  kernel_size: 3
  pool_size: 2
  dense: [64]                # the classifier head
  output_activation: null    # logits, paired with from_logits: true below (numerically stabler)
loss: {name: sparse_categorical_crossentropy, from_logits: true}
optimizer: {name: adam, learning_rate: 0.001}
metrics: [accuracy]
""" + _training("custom", 10, "val_loss"),
    "regression": """\
# Fit y = w*x + b by gradient descent (the TensorFlow "basic training loops" example).
# The data is generated, so this runs offline.  Train it:  tftrain run $path
# Afterwards runs/<name>-*/plots/parameters.png shows w and b approaching the true values.
name: linear-regression      # run directories are called <name>-<date>-<time>
seed: 0                      # same seed, same data and run
data:
  dataset: synthetic_regression
  options: {num_examples: 201, w: 3.0, b: 2.0, noise: 1.0}   # y = 3x + 2 + N(0, 1) on [-2, 2]
  batch_size: 201            # the whole data set per step: plain gradient descent
  shuffle: false
  validation: none           # or a fraction such as 0.2 to hold some points out
model:
  type: linear
  w_init: 5.0                # start away from the true w to watch it converge
  b_init: 0.0
loss: mse
optimizer: {name: sgd, learning_rate: 0.1}
metrics: [mae]
""" + _training("fit", 10, "loss"),  # no validation split: the best model is the lowest training loss
    "binary": """\
# Logistic regression on two 1-D Gaussian blobs (labels 0 and 1), trained one example at a time.
# The data is generated, so this runs offline.  Train it:  tftrain run $path
name: binary-classification  # run directories are called <name>-<date>-<time>
seed: 0                      # same seed, same data and run
data:
  dataset: synthetic_binary
  options: {num_examples: 100, mean: 3.0, std: 1.0}   # N(-3, 1) labelled 0, N(3, 1) labelled 1
  batch_size: 1
  validation: 0.2            # hold out a fifth of the points
model:
  type: linear
  w_init: 0.0
  b_init: 0.0
  output_activation: null    # logits, paired with from_logits: true below
loss: {name: binary_crossentropy, from_logits: true}
optimizer: {name: sgd, learning_rate: 0.02}
metrics: [accuracy]
""" + _training("custom", 3, "val_accuracy"),
    "table": """\
# A table with typed columns: penguin species from island, sex and body measurements (the
# palmerpenguins CSV: pip install palmerpenguins; its file is palmerpenguins/data/penguins.csv).
# Blanks and NA are filled with the training mean and flagged; categories are looked up in the
# training split's vocabulary (unseen values share one bucket). All of it happens inside the
# model, so `tftrain predict RUN rows.csv` and the exported SavedModel take raw rows.
# Check it:  tftrain validate $path     Train it:  tftrain run $path
name: penguins               # run directories are called <name>-<date>-<time>
seed: 0                      # same seed, same run; null picks one and records it
data:
  dataset: csv               # or jsonl: one JSON object per line, the same options
  path: data/penguins.csv
  batch_size: 32
  validation: 0.2            # hold out a fifth of the rows (statistics come from the rest only)
  options:
    label: species           # the target column: text names classes
    columns:                 # the inputs and their types; other columns are left out
      island: category       # one-hot over the training vocabulary (+ an unseen-value bucket)
      sex: {type: category, embedding: 2}   # or an embedding of N
      bill_length_mm: numeric                # normalized; missing -> mean + a "was missing" flag
      bill_depth_mm: numeric
      flipper_length_mm: numeric
      body_mass_g: numeric
      # zip: {type: hashed, bins: 1024}      # many distinct values: hashed into bins
      # review: {type: text, max_tokens: 20000, output_mode: tf_idf}
    crosses: [{columns: [island, sex], bins: 16}]   # every island x sex pair, hashed
model:
  type: dense                # its input is the preprocessed features
  hidden: [32]
  output_activation: softmax
loss: sparse_categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.003}
metrics: [accuracy]
""" + _training("fit", 25, "val_accuracy"),
    "text": """\
# A text classifier from a folder of .txt files, one sub-folder per class (data/reviews/pos/*.txt,
# data/reviews/neg/*.txt: keras.utils.text_dataset_from_directory's layout, as in the Keras
# "text classification from scratch" example). TextVectorization inside the model turns each
# raw text into token ids, so `tftrain predict RUN review.txt` and the SavedModel take strings.
# Check it:  tftrain validate $path     Train it:  tftrain run $path
name: text-cnn               # run directories are called <name>-<date>-<time>
seed: 0                      # same seed, same run; null picks one and records it
data:
  dataset: text_folder
  path: data/reviews
  batch_size: 32
  validation: 0.2            # hold out a fifth of the texts (the vocabulary comes from the rest)
  options:
    max_tokens: 20000        # vocabulary size; the embedding's input_dim below must match
    output_mode: int         # token ids; multi_hot | count | tf_idf give a bag of words for a dense model
    sequence_length: 500     # pad or cut every text to this many tokens
    # ngrams: 2              # also pairs of words
model:
  type: sequential
  layers:
    - {embedding: {input_dim: 20000, output_dim: 128}}
    - {dropout: 0.5}
    - {conv1d: {filters: 128, kernel_size: 7, strides: 3, activation: relu}}
    - {conv1d: {filters: 128, kernel_size: 7, strides: 3, activation: relu}}
    - global_max_pooling1d
    - {dense: {units: 128, activation: relu}}
    - {dropout: 0.5}
    - {dense: 2}             # one unit per class folder; logits (from_logits below)
loss: {name: sparse_categorical_crossentropy, from_logits: true}
optimizer: {name: adam, learning_rate: 0.001}
metrics: [accuracy]
""" + _training("fit", 3, "val_accuracy"),
}

# A real first model that runs offline where Debian's dataset-fashion-mnist package is installed
# (and downloads 30 MB once elsewhere); `regression` and `binary` need no data at all.
DEFAULT_TEMPLATE = "fashion_mnist"
MODELINE = "# yaml-language-server: $schema="  # read by VS Code's and other editors' YAML support


def render(template: str, path: str | Path, schema: str | Path | None = None) -> str:
    """The text of `template`, with `path` in its usage lines and, first, the line pointing
    editors at the JSON Schema file `schema` (a path from the current folder; the line holds it
    relative to the new file, as the YAML language server reads it)."""
    if template not in TEMPLATES:
        raise UserError(f"--template: unknown template {template!r}; expected one of: "
                        f"{', '.join(TEMPLATES)}")
    text = Template(TEMPLATES[template]).substitute(path=path)
    if schema is None:
        return text
    relative = os.path.relpath(Path(schema).absolute(), Path(path).absolute().parent)
    return f"{MODELINE}{Path(relative).as_posix()}\n{text}"


def write_template(template: str, path: str | Path, force: bool = False,
                   schema: str | Path | None = None) -> Path:
    """Write a starter config (whose first line points editors at `schema`, when given); an
    existing file is kept unless `force`."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name such as {path / 'config.yaml'}")
    if path.exists() and not force:
        raise UserError(f"{path}: already exists; choose another PATH or pass --force to overwrite it")
    check_output(path, force=True, option="PATH")  # a run's own file is never overwritten, even with --force
    text = render(template, path, schema)
    atomic_write(path, text)
    return path
