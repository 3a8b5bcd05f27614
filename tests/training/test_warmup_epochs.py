"""Issue 32, item 2: `warmup_epochs` (fractions allowed) beside `warmup_steps`, resolved from the
run's real steps per epoch as `decay_steps: auto` is, so a shorter run (`--set
training.epochs=1`, a smaller `data.limit`) gets a proportionally shorter warmup instead of an
error."""

from __future__ import annotations

import csv

import keras
import pytest

from tests.training.test_recipes import BASE, _merge, _quiet

EXPONENTIAL = {"schedule": "exponential_decay", "initial_learning_rate": 0.02, "decay_rate": 0.1,
               "warmup_learning_rate": 0.001}


def _value(schedule, step) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


@pytest.mark.parametrize("rate", [
    EXPONENTIAL,
    {"schedule": "cosine_decay", "initial_learning_rate": 0.0, "warmup_target": 0.02},
])
def test_warmup_epochs_is_the_same_schedule_as_its_steps(rate):
    """1.5 epochs of 6 steps is exactly warmup_steps: 9, for LinearWarmup and for Keras's own
    CosineDecay warmup (whose decay_steps: auto is then the 15 steps after it)."""
    from tftrain.spec.loading import validate
    from tftrain.training.schedules import build_learning_rate

    def built(**warmup):
        config = validate(_merge(BASE, {"optimizer": {"learning_rate": {**rate, **warmup}}}))
        return build_learning_rate(config.optimizer, total_steps=24, steps_per_epoch=6)

    in_epochs, in_steps = built(warmup_epochs=1.5), built(warmup_steps=9)
    assert [_value(in_epochs, s) for s in range(25)] == pytest.approx([_value(in_steps, s) for s in range(25)])
    assert _value(in_epochs, 4) < _value(in_epochs, 9)  # it does warm up
    if rate["schedule"] == "cosine_decay":
        assert in_epochs.warmup_steps == 9 and in_epochs.decay_steps == 15


def test_a_shorter_run_gets_a_shorter_warmup(tmp_path):
    """warmup_steps: 20 in a run cut to 1 epoch of 6 steps is refused; warmup_epochs: 2 follows
    the run's real epochs (3 steps each once the data is halved): the rate each epoch's last step
    used (history.csv) shows a warmup of 6 steps."""
    from tftrain.errors import ConfigError
    from tftrain.spec.loading import validate
    from tftrain.training.session import run_training

    steps_rate = {**EXPONENTIAL, "warmup_steps": 20}
    with pytest.raises(ConfigError, match="warmup_steps: 20 warmup steps, but the run trains 6 steps"):
        run_training(validate(_merge(BASE, {"optimizer": {"learning_rate": steps_rate},
                                            "training": {"epochs": 1}})), tmp_path / "steps", console=_quiet())
    epochs_rate = {**EXPONENTIAL, "warmup_epochs": 2}
    # 16 examples, a quarter held out: 12 to train on, 3 steps an epoch, 12 steps, a warmup of 6
    raw = _merge(BASE, {"optimizer": {"name": "sgd", "learning_rate": epochs_rate},
                        "data": {"options": {"num_examples": 16}}})
    run = run_training(validate(raw), tmp_path / "epochs", console=_quiet()).path
    with open(run / "history.csv", newline="") as f:
        lrs = [float(row["lr"]) for row in csv.DictReader(f)]
    peak = 0.02 * 0.1 ** (6 / 12)
    # the last step of epoch 1 is step index 2: 2/6 of the way up; epoch 2 ends at 5/6; then the decay
    assert lrs == pytest.approx([0.001 + (peak - 0.001) * 2 / 6, 0.001 + (peak - 0.001) * 5 / 6,
                                 0.02 * 0.1 ** (8 / 12), 0.02 * 0.1 ** (11 / 12)], rel=1e-5)


@pytest.mark.parametrize("patch, message", [
    ({"optimizer": {"learning_rate": {**EXPONENTIAL, "warmup_steps": 5, "warmup_epochs": 1}}},
     "optimizer.learning_rate.warmup_epochs: give the warmup in steps (warmup_steps) or in "
     "epochs (warmup_epochs), not both"),
    ({"optimizer": {"learning_rate": {**EXPONENTIAL, "warmup_epochs": 4}}},
     "optimizer.learning_rate.warmup_epochs: 4 warmup epochs, but the run trains 4 (training.epochs)"),
    ({"optimizer": {"learning_rate": {**EXPONENTIAL, "warmup_epochs": 0.5}}, "training": {"steps": 20}},
     "optimizer.learning_rate.warmup_epochs: the run is set by training.steps"),
    ({"optimizer": {"learning_rate": {"schedule": "cosine_decay", "initial_learning_rate": 0.0,
                                      "warmup_epochs": 1}}},
     "warmup_target: required with warmup_epochs"),
])
def test_bad_warmups_are_refused_at_validate(cli, write_config, patch, message):
    result = cli("validate", write_config(_merge(BASE, patch)))
    assert result.exit_code == 2 and message in result.output, result.output
