"""Model types (one module each) and the registry the config schema is derived from.

Adding a type: a module with a `ModelSchema` subclass (schema, `build`, `check`, and
`logged_values` if it has any), and one line in MODEL_TYPES below. The config's `model:` union,
its tags and error messages, the data checks and the builder all follow from that line.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tftrain.errors import DataError
from tftrain.models.application import ApplicationModel
from tftrain.models.base import ModelSchema, ModelSpec
from tftrain.models.cnn import CnnModel
from tftrain.models.dense import DenseModel
from tftrain.models.graph import GraphModel
from tftrain.models.hub import HubModel
from tftrain.models.keras_file import KerasFileModel
from tftrain.models.linear import LinearModel
from tftrain.models.sequential import SequentialModel
from tftrain.spec import catalog
from tftrain.spec.checks import RunFacts
from tftrain.spec.outputs import SEVERAL

if TYPE_CHECKING:
    from tftrain.data.base import LoadedData, StreamedData
    from tftrain.spec.schema import Config

MODEL_TYPES: tuple[type[ModelSchema], ...] = (
    DenseModel,
    CnnModel,
    LinearModel,
    SequentialModel,
    GraphModel,
    ApplicationModel,
    KerasFileModel,
    HubModel,
)
TAGS: tuple[str, ...] = tuple(model.tag() for model in MODEL_TYPES)
BY_TAG: dict[str, type[ModelSchema]] = dict(zip(TAGS, MODEL_TYPES))

__all__ = ["BY_TAG", "MODEL_TYPES", "TAGS", "ModelSchema", "ModelSpec", "model_spec"]


def model_spec(config: Config, data: LoadedData | StreamedData) -> ModelSpec:
    """Input shape and scale from the data; output units from what the loss trains."""
    from tftrain.data.pipeline.label_encoding import stored_task

    task = RunFacts.of(config).task
    if task == SEVERAL:  # each output its own units (tftrain.models.outputs)
        from tftrain.models.outputs import head_units

        heads = head_units(config, data)
        return ModelSpec(tuple(data.input_shape), None, heads[0][1], "float32", config.data.dataset, task,
                         input_dtype=str(data.input_dtype), heads=heads)
    if stored_task(config, data) == "classes":  # class indices (one-hot encoded in the pipeline or not)
        if data.num_classes is None:
            raise DataError(f"loss {config.loss.canonical} needs integer class labels; "
                            f"the labels of {config.data.dataset} are {data.label_dtype}")
        outputs = data.num_classes
    elif task in catalog.TASK_LABEL_RANGE:  # one unit per label
        outputs = 1
    else:
        outputs = int(math.prod(data.label_shape)) or 1
    scale = data.input_scale if config.data.normalize == "auto" else None  # per_channel: tftrain.training.plan
    return ModelSpec(tuple(data.input_shape), scale, outputs, "float32", config.data.dataset, task,
                     input_dtype=str(data.input_dtype))
