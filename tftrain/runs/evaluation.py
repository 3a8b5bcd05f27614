"""Evaluation of a run's model on a split of the run's own data, as `tftrain evaluate` and the
smoke test's evaluate stage both do: the data rebuilt from the run's config, the test split
(else validation, else train), the model compiled with the config's loss and metrics.
"""

from __future__ import annotations

from typing import Any


def evaluation_split(config) -> tuple[Any, Any]:
    """The run's data (LoadedData) and the split it is evaluated on (data.pipeline.Evaluation: name,
    batches, examples), rebuilt from `config` with its own seed."""
    from tftrain.data import load_data
    from tftrain.data.pipeline.batches import evaluation_batches

    data = load_data(config, config.seed)
    return data, evaluation_batches(data, config, config.seed)


def evaluate_model(model, config, batches) -> dict[str, float]:
    """The config's loss and metrics of `model` over `batches` (the model is compiled for it)."""
    from tftrain.models.components import build_loss, build_metrics, output_width
    from tftrain.spec.outputs import several

    if several(config):  # each output's loss and metrics, named as in training (tftrain.models.outputs)
        from tftrain.models.outputs import compile_arguments, head_classes

        model.compile(**compile_arguments(config, head_classes(model)))
    else:
        model.compile(loss=build_loss(config.loss), metrics=build_metrics(config, output_width(model)))
    return {k: float(v) for k, v in model.evaluate(batches, return_dict=True, verbose=0).items()}
