"""One entry per dataset name: the options it takes (its own strict class, built only when
named), which splits it has and where its test split comes from. The loaders live in
tftrain.data (which imports NumPy); everything else asks this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from tftrain.spec.base import Strict as _Options
from tftrain.spec.base import suggest

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


# Typed table columns (tftrain.data.tables): what each kind of column becomes inside the model.
COLUMN_TYPES = ("numeric", "category", "hashed", "text")
TEXT_OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")
# Cells that mean "no value" in a numeric column (pandas' usual markers): filled with the mean, flagged.
MISSING_MARKERS = ("", "NA", "N/A", "NaN", "nan", "null", "None", "?")


class TableColumn(_Options):
    """One typed input column of a table (csv, jsonl), preprocessed inside the model."""

    type: Literal[COLUMN_TYPES]  # no default: numeric, category, hashed or text
    embedding: PositiveInt | None = None  # category/hashed (text: int mode): an Embedding of N; null: one-hot
    max_values: PositiveInt = 10_000  # category: more distinct training values is an error (use hashed)
    bins: PositiveInt = 1024  # hashed: hash buckets (keras.layers.Hashing)
    max_tokens: PositiveInt | None = 20_000  # text: vocabulary size (TextVectorization's max_tokens)
    sequence_length: PositiveInt | None = None  # text, int mode: pad or cut to this many tokens
    output_mode: Literal[TEXT_OUTPUT_MODES] = "tf_idf"  # text: a bag of words weighted by rarity fits beside other columns
    ngrams: Annotated[int, Field(ge=1, le=5)] | None = None  # text: also n-grams up to this length

    @model_validator(mode="after")
    def _keys_of_its_type(self) -> "TableColumn":
        fields = type(self).model_fields
        own = {"numeric": set(), "category": {"embedding", "max_values"}, "hashed": {"embedding", "bins"},
               "text": {"embedding", "max_tokens", "sequence_length", "output_mode", "ngrams"}}[self.type]
        for key in fields:
            if key != "type" and key not in own and getattr(self, key) != fields[key].default:
                raise ValueError(f"{key} does not apply to a {self.type} column"
                                 + (f" (it applies to: {', '.join(sorted(own))})" if own else ""))
        if self.type == "text" and self.embedding is not None and self.output_mode != "int":
            raise ValueError("embedding applies to a text column with output_mode: int (token sequences)")
        return self


class TableCross(_Options):
    """A feature cross of category/hashed columns (keras.layers.HashedCrossing), one-hot in `bins` buckets."""

    columns: Annotated[list[str], Field(min_length=2)]  # no default: the columns crossed
    bins: PositiveInt = 32  # hash buckets for the combinations (the FeatureSpace tutorial's 32)


class TableOptions(_Options):
    """What every table dataset (csv, jsonl) takes: the target, typed inputs and crosses."""

    # No sensible default: only the user knows which column is the target; a list of columns
    # trains several outputs (a graph's `outputs`, tftrain.spec.outputs), one per label column.
    label: str | Annotated[list[str], Field(min_length=1)]
    # auto: whole non-negative numbers written as integers are class labels, text names classes,
    # other numbers are regression targets; set it when integers are quantities (counts, prices).
    task: Literal["auto", "classification", "regression"] = "auto"
    test_path: str | None = None  # null -> no test file; data.validation may carve a fraction instead
    # Typed inputs (tftrain.data.tables): {name: numeric | category | hashed | text | {type: ..., ...}};
    # null: every column but the label is a number (the model takes a float vector).
    # (The string form is turned into the mapping before validation; the union says so to the JSON Schema.)
    columns: dict[str, TableColumn | Literal[COLUMN_TYPES]] | None = None
    crosses: list[TableCross] = []  # none: crosses are a modelling choice
    missing: list[str] = list(MISSING_MARKERS)  # numeric cells that mean "no value"

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """`island: category` is `island: {type: category}`."""
        if not isinstance(value, dict):
            return value
        return {name: {"type": c} if isinstance(c, str) else c for name, c in value.items()}

    @model_validator(mode="after")
    def _typed_columns(self) -> "TableOptions":
        columns = self.columns or {}
        if self.columns is not None and not columns:
            raise ValueError("columns: empty; name the input columns, or leave columns out (every column numeric)")
        labels = self.label if isinstance(self.label, list) else [self.label]
        twice = sorted({name for name in labels if labels.count(name) > 1})
        if twice:
            raise ValueError(f"label: '{twice[0]}' is listed twice; each output needs its own label column")
        if isinstance(self.label, list) and self.columns is None:
            raise ValueError("label: a list of labels (several outputs) needs typed inputs: name them in columns")
        for label in labels:
            if label in columns:
                raise ValueError(f"columns: '{label}' is the label; it cannot be an input column too")
        if self.crosses and self.columns is None:
            raise ValueError("crosses: join typed columns; name them (and their types) in columns")
        for i, cross in enumerate(self.crosses):
            for name in cross.columns:
                if name not in columns:
                    raise ValueError(f"crosses.{i}.columns: '{name}' is not in columns" + suggest(name, list(columns)))
                if columns[name].type not in ("category", "hashed"):
                    raise ValueError(f"crosses.{i}.columns: '{name}' is a {columns[name].type} column; crosses "
                                     "join category or hashed columns")
        return self


class CsvOptions(TableOptions):
    """A CSV file with a header row: `label` is the target column, every other column a feature
    (or the typed `columns`: tftrain.data.tables)."""

    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","  # the C in CSV
    encoding: str = "utf-8-sig"  # UTF-8, with or without Excel's byte-order mark (a CSV that streams is read as UTF-8)


class JsonlOptions(TableOptions):
    """JSON Lines: one JSON object per line; `label` names the target key, `columns` the inputs
    (required: JSON values carry no header to read the column names from)."""

    encoding: str = "utf-8"  # the files' text encoding

    @model_validator(mode="after")
    def _named_columns(self) -> "JsonlOptions":
        if self.columns is None:
            raise ValueError("columns: required for jsonl; name each input key and its type, e.g. "
                             "{age: numeric, city: category}")
        return self


class TextFolderOptions(_Options):
    """One sub-folder of .txt files per class, one example a file (keras.utils.text_dataset_from_directory's
    layout); the texts go through TextVectorization inside the model (tftrain.data.text)."""

    test_path: str | None = None  # null -> no test folder; data.validation may carve a fraction instead
    encoding: str = "utf-8"  # the files' text encoding
    max_tokens: PositiveInt | None = 20_000  # vocabulary size, the Keras text tutorial's
    output_mode: Literal[TEXT_OUTPUT_MODES] = "tf_idf"  # int: token sequences for an embedding model
    sequence_length: PositiveInt | None = None  # int mode: pad or cut to this many tokens (null: the longest)
    ngrams: Annotated[int, Field(ge=1, le=5)] | None = None  # also n-grams up to this length

    @model_validator(mode="after")
    def _sequence_length(self) -> "TextFolderOptions":
        if self.sequence_length is not None and self.output_mode != "int":
            raise ValueError(f"sequence_length applies to output_mode: int (token sequences), not {self.output_mode}")
        return self


class TimeseriesOptions(_Options):
    """A CSV of a series sorted by `time_column`, cut into windows of `window` rows (every input
    column) whose target is `target` `horizon` rows after the window's last row
    (keras.utils.timeseries_dataset_from_array's windows; tftrain.data.series)."""

    target: str  # no sensible default: the column to forecast
    time_column: str | None = None  # null: the rows are in time order as they are; else checked sorted, no duplicates
    columns: list[str] | None = None  # the input columns; null: every column but time_column (the target included)
    window: Annotated[int, Field(gt=0, le=100_000)] = 24  # input rows per example: a day of hourly data
    horizon: Annotated[int, Field(gt=0, le=100_000)] = 1  # forecast this many rows after the window's last
    stride: Annotated[int, Field(gt=0, le=100_000)] = 1  # rows between the starts of consecutive windows
    test_path: str | None = None  # null -> no test file; data.validation: FRACTION takes the last part in time
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","  # the C in CSV
    encoding: str = "utf-8-sig"  # UTF-8, with or without Excel's byte-order mark


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
    kind: str  # images | table | text | series | records | generated: what the data holds, for messages and checks

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
    "jsonl": Dataset(JsonlOptions, "option:test_path", "table"),
    "text_folder": Dataset(TextFolderOptions, "option:test_path", "text"),
    "timeseries": Dataset(TimeseriesOptions, "option:test_path", "series"),
    "image_folder": Dataset(ImageFolderOptions, "option:test_path", "images"),
    "tfrecord": Dataset(TfrecordOptions, "option:test_path", "records"),
    "tfds": Dataset(TfdsOptions, "option:split_test", "records"),
    "synthetic_regression": Dataset(SyntheticRegressionOptions, "none", "generated"),
    "synthetic_binary": Dataset(SyntheticBinaryOptions, "none", "generated"),
}
