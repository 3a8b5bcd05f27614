"""One entry per dataset name: the options it takes (its own strict class, built only when
named), which splits it has and where its test split comes from. The loaders live in
tftrain.data (which imports NumPy); everything else asks this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, model_validator

from tftrain.spec.base import Strict as _Options

# Generated data lives in memory: ten million points is ~80 MB, more is a typo, not a dataset.
MAX_GENERATED = 10_000_000
# Images are resized to image_size in memory: 16k x 16k RGB is already 768 MB per image.
MAX_IMAGE_SIDE = 16_384


class NoOptions(_Options):
    """The dataset takes no options."""


class SyntheticRegressionOptions(_Options):
    """y = (w + slope_noise*N(0, 1))*x + b + noise*N(0, 1), x on linspace(x_min, x_max) or drawn
    from N(x_mean, x_std): the basic-training-loop data by default."""

    num_examples: Annotated[int, Field(gt=0, le=MAX_GENERATED)] = 201  # the tutorial's 201 points
    w: float = 3.0  # the tutorial's true slope
    b: float = 2.0  # and intercept
    noise: Annotated[float, Field(ge=0)] = 1.0  # standard deviation of the Gaussian noise
    slope_noise: Annotated[float, Field(ge=0)] = 0.0  # per-point noise on the slope: off, as in the tutorial
    x_distribution: Literal["linspace", "normal"] = "linspace"  # the tutorial's evenly spaced x
    x_min: float = -2.0  # the tutorial's range (linspace)
    x_max: float = 2.0  # [-2, 2]: the tutorial's range (linspace)
    x_mean: float = 0.0  # the mean of x drawn from N(x_mean, x_std) (normal): standard normal
    x_std: Annotated[float, Field(gt=0)] = 1.0  # and its spread


class SyntheticBinaryOptions(_Options):
    """Two Gaussian blobs on a line, N(-mean, std) labelled 0 and N(mean, std) labelled 1."""

    num_examples: Annotated[int, Field(ge=2, le=MAX_GENERATED)] = 100  # 50 per class, as in the logistic-regression example
    mean: float = 3.0  # classes centred at -3 and +3: almost separable
    std: Annotated[float, Field(gt=0)] = 1.0  # unit variance


class CsvOptions(_Options):
    """A CSV file with a header row: `label` is the target column, every other column a feature."""

    label: str  # no sensible default: only the user knows which column is the target
    # auto: whole non-negative numbers written as integers are class labels, text names classes,
    # other numbers are regression targets; set it when integers are quantities (counts, prices).
    task: Literal["auto", "classification", "regression"] = "auto"
    test_path: str | None = None  # null -> no test file; data.validation may carve a fraction instead
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","  # the C in CSV


class ImageFolderOptions(_Options):
    """One sub-folder of images per class, read by keras.utils.image_dataset_from_directory."""

    # [height, width] to resize every image to; null: the images' own size, which they must all share.
    image_size: Annotated[list[Annotated[int, Field(gt=0, le=MAX_IMAGE_SIDE)]],
                          Field(min_length=2, max_length=2)] | None = None
    color_mode: Literal["grayscale", "rgb", "rgba"] = "rgb"  # Keras's default: 3 channels
    interpolation: Literal["bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5",
                           "gaussian", "mitchellcubic"] = "bilinear"  # Keras's default resize method
    crop_to_aspect_ratio: bool = False  # Keras's default: resize may distort the aspect ratio
    test_path: str | None = None  # null -> no test folder; data.validation may carve a fraction instead


# What a TFRecord feature's bytes may hold, and the NumPy dtypes `decode: raw` reads them as.
IMAGE_DECODERS = ("png", "jpeg", "image")  # image: PNG, JPEG, GIF or BMP, told apart by its bytes
RAW_DTYPES = ("uint8", "int8", "uint16", "int16", "int32", "int64", "float16", "float32", "float64")


class TfrecordFeature(_Options):
    """One feature of the tf.train.Example records, as tf.io.parse_example needs it."""

    type: Literal["bytes", "int64", "float"]  # no default: the records say what they hold
    shape: list[PositiveInt] = []  # [] is one value per record; bytes features: the decoded array's shape
    decode: Literal["raw", "png", "jpeg", "image"] | None = None  # bytes only: what the bytes are; required there
    dtype: Literal[RAW_DTYPES] | None = None  # decode: raw only: the array's element type; null: uint8 (pixels)

    @model_validator(mode="after")
    def _decodable(self) -> "TfrecordFeature":
        if self.type != "bytes":
            if self.decode is not None or self.dtype is not None:
                article = "an" if self.type == "int64" else "a"
                raise ValueError(f"decode and dtype apply to bytes features; {article} {self.type} feature is read "
                                 f"as {self.type} values of the given shape")
            return self
        if self.decode is None:
            raise ValueError("a bytes feature needs decode: raw (an array's bytes), png, jpeg or image")
        if not self.shape:
            raise ValueError(f"a bytes feature decoded as {self.decode} needs shape: the array each record "
                             "holds, e.g. [28, 28, 1]")
        if self.decode in IMAGE_DECODERS and (len(self.shape) != 3 or self.shape[2] not in (1, 3, 4)):
            raise ValueError(f"decode: {self.decode} gives images: shape must be [height, width, channels] "
                             f"with 1, 3 or 4 channels, got {self.shape}")
        if self.decode in IMAGE_DECODERS and self.dtype not in (None, "uint8"):
            raise ValueError(f"decode: {self.decode} gives uint8 pixels; dtype applies to decode: raw")
        return self


class TfrecordOptions(_Options):
    """TFRecord files of tf.train.Example records: `options.features` as tf.io.parse_example reads them."""

    features: dict[str, TfrecordFeature]  # no sensible default: only the user knows what the records hold
    label: str  # no sensible default: which feature is the target (the others are the inputs)
    test_path: str | None = None  # a glob of test files; null: no test split (data.validation may carve a fraction)
    compression: Literal["auto", "none", "gzip"] = "auto"  # auto: gzip where a file starts as gzip files do
    num_classes: PositiveInt | None = None  # null: the largest integer label + 1, counted when the records are checked

    @model_validator(mode="after")
    def _label_and_inputs(self) -> "TfrecordOptions":
        names = list(self.features)
        if self.label not in self.features:
            from tftrain.spec.base import suggest  #, deferred:, tftrain.schema, imports, this, module

            raise ValueError(f"label: '{self.label}' is not one of the features ({', '.join(names)})"
                             + suggest(self.label, names))
        if self.features[self.label].type == "bytes":
            raise ValueError(f"label: feature '{self.label}' is bytes; the target must be int64 (classes) "
                             "or float (values)")
        inputs = [n for n in names if n != self.label]
        if not inputs:
            raise ValueError(f"features: only the label '{self.label}'; list the input feature(s) too")
        arrays = [n for n in inputs if self.features[n].type == "bytes"]
        if arrays and len(inputs) > 1:
            raise ValueError(f"features: '{arrays[0]}' is bytes (an array or image) beside other inputs "
                             f"({', '.join(n for n in inputs if n != arrays[0])}); a model takes one input: "
                             "one bytes feature, or numeric features (joined into one vector)")
        return self


class TfdsOptions(_Options):
    """A dataset of tensorflow-datasets (tfds), read from its prepared files in `data_dir`."""

    name: str  # no sensible default: the TFDS name, e.g. mnist or mnist:3.0.1
    data_dir: str | None = None  # null: TFDS's own default ($TFDS_DATA_DIR, else ~/tensorflow_datasets)
    split_train: str = "train"  # TFDS split syntax: train, train[:90%], train+validation
    split_test: str | None = "test"  # the split validation: test uses; null: the dataset has none
    download: bool = False  # off: a run never reaches the network; true lets TFDS download and prepare
    input: str | None = None  # null: the dataset's supervised input (info.supervised_keys)
    label: str | None = None  # null: the dataset's supervised label
    # [height, width] to resize images to; null: the dataset's own shape, which must be fixed.
    image_size: Annotated[list[Annotated[int, Field(gt=0, le=MAX_IMAGE_SIDE)]],
                          Field(min_length=2, max_length=2)] | None = None


@dataclass(frozen=True)
class Dataset:
    """What the config layer knows of a dataset name, without loading it."""

    options: type[_Options]  # its `data.options`, validated only when the dataset is named
    # Where `data.validation: test` takes its examples from: "own" (the dataset ships a test split),
    # "file" (an .npz may hold x_test/y_test: known when it is read), "option:<key>" (a split or
    # file its options name; none when that option is null), or "none" (there is no test split).
    test_split: str
    kind: str  # images | table | records | generated: what the data holds, for messages and checks

    @property
    def test_option(self) -> str | None:
        """The option naming the test split (`test_path`, `split_test`), if the split is one."""
        return self.test_split.partition(":")[2] or None

    def has_test(self, options: dict) -> bool | None:
        """Whether `validation: test` finds a test split with these (validated) options; None
        when only reading the data tells (an .npz with or without x_test)."""
        if self.test_split == "file":
            return None
        if self.test_option:
            return bool(options.get(self.test_option))
        return self.test_split == "own"


# Dataset name -> what it takes and has. Adding a format: its loader in tftrain.data (one registry
# line there) and one line here.
DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(NoOptions, "own", "images"),
    "fashion_mnist": Dataset(NoOptions, "own", "images"),
    "cifar10": Dataset(NoOptions, "own", "images"),
    "npz": Dataset(NoOptions, "file", "images"),
    "csv": Dataset(CsvOptions, "option:test_path", "table"),
    "image_folder": Dataset(ImageFolderOptions, "option:test_path", "images"),
    "tfrecord": Dataset(TfrecordOptions, "option:test_path", "records"),
    "tfds": Dataset(TfdsOptions, "option:split_test", "records"),
    "synthetic_regression": Dataset(SyntheticRegressionOptions, "none", "generated"),
    "synthetic_binary": Dataset(SyntheticBinaryOptions, "none", "generated"),
}
