"""A tune spec checked against the config it tunes, before any trial: every key path and bounding
value of the space (and each enqueued point) against the config schema, and the objective against
what the runs log (tftrain.spec.checks.RunFacts). Apart from tftrain.spec.tune because these need
the whole config layer, which the `tune:` block is part of.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tftrain.errors import ConfigError
from tftrain.spec import catalog
from tftrain.spec.base import show, suggest
from tftrain.spec.checks import RunFacts
from tftrain.spec.loading import config_problem
from tftrain.spec.tune import TuneSpec, yaml_text

if TYPE_CHECKING:
    from tftrain.spec.schema import Config


def objective_metric(spec: TuneSpec, base: Config) -> tuple[str, str]:
    """(metric, Optuna direction); ConfigError if the runs will not log the metric."""
    facts = RunFacts.of(base)
    logged = facts.logged
    metric = spec.objective.metric
    if metric is None:  # the checkpoint monitor, which falls back to loss without validation as it does
        metric = base.training.checkpoint.monitor
        if metric.startswith("val_") and metric not in logged and metric[4:] in logged:
            metric = metric[4:]
    if metric not in logged:
        hint = "" if facts.validates or not metric.startswith("val_") else \
            " (this config has no validation data: set data.validation to a fraction such as 0.2)"
        raise ConfigError(f"objective.metric: the runs will not log {show(metric)}" + suggest(metric, logged)
                          + f"; they log: {', '.join(logged)}{hint}")
    direction = spec.objective.direction
    if direction == "auto":
        direction = "maximize" if catalog.monitor_mode(metric) == "max" else "minimize"
    return metric, direction


def check_against(spec: TuneSpec, base: Config) -> tuple[str, str]:
    """Check every key path and every bounding value of the space (and the enqueued points)
    against the config schema, and the objective against what the runs log; returns the
    objective's (metric, direction). ConfigError (one line) on the first problem."""
    raw = base.model_dump(mode="json")
    for dim in spec.dimensions():
        for what, value in dim.edges():
            problem = config_problem(raw, {dim.key: yaml_text(value)})
            if problem is None:
                continue
            if any(words in problem for words in ("unknown key", "unknown parameter", "unknown option",
                                                  "not a key path")):  # the key, not the value
                raise ConfigError(f"space: {dim.key}: {_without_parent(problem, dim.key)}")
            raise ConfigError(f"space: {dim.key}: {what}: {problem}")
    for i, point in enumerate(spec.enqueue):
        problem = config_problem(raw, {key: yaml_text(value) for key, value in point.items()})
        if problem is not None:
            raise ConfigError(f"enqueue[{i}]: {problem}")
    return objective_metric(spec, base)


def _without_parent(problem: str, key: str) -> str:
    """`optimizer: unknown parameter ...` about `optimizer.x` -> `unknown parameter ...`."""
    parts = key.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i]) + ": "
        if problem.startswith(prefix):
            return problem[len(prefix):]
    return problem
