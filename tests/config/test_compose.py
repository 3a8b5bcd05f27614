"""Configs composed from several files (issue 17): `extends` order and deep merge, relative paths,
chains and cycles, `${env:...}`, `show --sources`, errors that name the file, and a run's
config.yaml that holds the resolved result."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml

from tftrain.spec.loading import load_config

BASE = """
data: {dataset: synthetic_regression, batch_size: 8, validation: none, options: {num_examples: 32, noise: 0.5}}
model: {type: dense, hidden: [64, 32], dropout: 0.1}
loss: mse
optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.9}
metrics: [mae]
training: {epochs: 3, checkpoint: {monitor: loss}}
"""


def write(root: Path, files: dict[str, str]) -> Path:
    """Write each `name: text` under root (folders made); returns root."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def one_line_error(cli, *args) -> str:
    """Run the CLI expecting bad input: exit 2 and exactly one `error: ` line; returns it."""
    result = cli(*args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


# -- order and merge -------------------------------------------------------------------------

def test_files_merge_in_order_then_the_file_then_set(tmp_path):
    write(tmp_path, {
        "base.yaml": BASE,
        "wide.yaml": "model: {hidden: [256]}\ntraining: {epochs: 5}\n",
        "exp.yaml": """
            extends: [base.yaml, wide.yaml]
            data: {batch_size: 16, options: {noise: 0.0}}
            training: {epochs: 7}
        """,
    })
    config = load_config(tmp_path / "exp.yaml", ["training.epochs=9"])
    # mappings merge key by key, at every depth
    assert config.data.batch_size == 16 and config.data.validation == "none"
    assert config.data.options["noise"] == 0.0 and config.data.options["num_examples"] == 32
    assert config.model.dropout == 0.1 and config.optimizer.params["momentum"] == 0.9
    # lists replace (not appended, not merged by index)
    assert config.model.hidden == [256]
    # later files win over earlier ones, the file over its bases, --set over everything
    assert config.training.checkpoint.monitor == "loss"
    assert config.training.epochs == 9
    assert load_config(tmp_path / "exp.yaml").training.epochs == 7
    (tmp_path / "exp.yaml").write_text("extends: [wide.yaml, base.yaml]\n")
    assert load_config(tmp_path / "exp.yaml").model.hidden == [64, 32]  # the order decides


def test_scalars_and_lists_replace_mappings_and_back(tmp_path):
    write(tmp_path, {
        "base.yaml": BASE,
        "exp.yaml": "extends: base.yaml\nmetrics: [{name: root_mean_squared_error}, mae]\nloss: {reduction: sum}\n",
    })
    config = load_config(tmp_path / "exp.yaml")
    assert [m.name for m in config.metrics] == ["root_mean_squared_error", "mae"]
    # `loss: mse` extended by a mapping keeps the name: the string means {name: mse}
    assert config.loss.name == "mse" and config.loss.params == {"reduction": "sum"}


def test_a_new_model_type_or_component_name_replaces_the_inherited_block(tmp_path):
    write(tmp_path, {
        "base.yaml": BASE,
        "exp.yaml": "extends: base.yaml\nmodel: {type: linear, w_init: 1.0}\noptimizer: {name: adam}\n",
        "same.yaml": "extends: base.yaml\nmodel: {type: dense, dropout: 0.2}\noptimizer: {name: sgd, nesterov: true}\n",
    })
    config = load_config(tmp_path / "exp.yaml")
    # dense's hidden/dropout and SGD's momentum belong to the old choices: not carried over
    assert config.model.type == "linear" and config.model.w_init == 1.0
    assert config.optimizer.name == "adam" and config.optimizer.params == {"learning_rate": 0.01}
    same = load_config(tmp_path / "same.yaml")  # the same type/name merges as usual
    assert same.model.hidden == [64, 32] and same.model.dropout == 0.2
    assert same.optimizer.params == {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}


def test_extends_paths_are_relative_to_the_file_that_names_them(tmp_path, monkeypatch):
    write(tmp_path, {
        "lib/base/data.yaml": "data: {dataset: synthetic_regression, batch_size: 4}\nloss: mse\n",
        "lib/recipes/model.yaml": "extends: ../base/data.yaml\nmodel: {type: linear}\n",
        "projects/a/exp.yaml": "extends: ../../lib/recipes/model.yaml\ntraining: {epochs: 2}\n",
    })
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the folder of any of the files
    config = load_config(tmp_path / "projects/a/exp.yaml")
    assert (config.data.batch_size, config.model.type, config.training.epochs) == (4, "linear", 2)
    assert config.name == "exp"  # named after the file given, not a base
    write(tmp_path, {"projects/a/abs.yaml": f"extends: {tmp_path / 'lib/recipes/model.yaml'}\n"})
    assert load_config(tmp_path / "projects/a/abs.yaml").model.type == "linear"  # absolute paths work too


def test_chains_and_a_file_extended_twice(tmp_path):
    write(tmp_path, {
        "c0.yaml": BASE,
        **{f"c{i}.yaml": f"extends: c{i - 1}.yaml\ntraining: {{epochs: {i}}}\n" for i in range(1, 5)},
        "wide.yaml": "extends: c0.yaml\nmodel: {hidden: [512]}\n",
        # c0 is reached through both: merged once, where it first appears, so it does not undo
        # what c2 changed when wide.yaml brings it in again; and it is not a cycle
        "diamond.yaml": "extends: [c2.yaml, wide.yaml]\n",
    })
    assert load_config(tmp_path / "c4.yaml").training.epochs == 4
    assert load_config(tmp_path / "c4.yaml").model.hidden == [64, 32]
    diamond = load_config(tmp_path / "diamond.yaml")
    assert diamond.training.epochs == 2 and diamond.model.hidden == [512]


# -- bad input: one line, exit 2, nothing written ----------------------------------------------

@pytest.mark.parametrize("files,expected", [
    ({"a.yaml": "extends: a.yaml\n"}, "a.yaml -> a.yaml: extends cycle"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: [c.yaml]\n", "c.yaml": "extends: a.yaml\n"},
     "a.yaml -> b.yaml -> c.yaml -> a.yaml: extends cycle"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: sub/missing.yaml\n"},
     "a.yaml -> b.yaml -> sub/missing.yaml: no such file"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "- a list\n"},
     "a.yaml -> b.yaml: expected a mapping of config keys to extend, got a list"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": ""}, "a.yaml -> b.yaml: expected a mapping of config keys to extend, got null"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "data: [unclosed\n"}, "a.yaml -> b.yaml: line 2, column 1: invalid YAML"),
    # libyaml reads configs fast; the pure-Python parser's messages (which name the tab, the alias) are kept
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "data:\n\t- x\n"},
     "a.yaml -> b.yaml: line 2, column 1: invalid YAML: found character '\\t' that cannot start any token"),
    ({"a.yaml": "loss: *nope\n"}, "a.yaml: line 1, column 7: invalid YAML: found undefined alias 'nope'"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "x: !!python/object/apply:os.system ['echo hacked']\n"},
     "a.yaml -> b.yaml: refused YAML tag"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{k}: &{k} [{', '.join(['*' + p] * 9)}]\n" for p, k in zip("abcdefgh", "bcdefghi"))},
     "a.yaml -> b.yaml: more than 100000 values once its aliases are expanded; refused (this looks like an alias bomb)"),
    ({"a.yaml": "extends: 3\n"}, "a.yaml: extends: expected a file name or a list of file names, got 3"),
    ({"a.yaml": "extends: [b.yaml, '']\n"}, 'a.yaml: extends: expected a file name or a list of file names, got "" in the list'),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "data: {path: '${env:TFTRAIN_TEST_UNSET}'}\n"},
     "b.yaml: data.path: environment variable TFTRAIN_TEST_UNSET is not set and has no default "
     "(set it, or write ${env:TFTRAIN_TEST_UNSET,DEFAULT})"),
    ({"a.yaml": "metrics: [mae, 'x${env:HOME']\n"}, 'a.yaml: metrics.1: unclosed "${" in "x${env:HOME"'),
    ({"a.yaml": "name: '${oc.env:HOME}'\n"}, 'a.yaml: name: "${oc.env:HOME}" is not a reference tftrain knows; '
     "expected ${env:NAME} or ${env:NAME,default}"),
    ({"a.yaml": "name: '${env:}'\n"}, 'a.yaml: name: "${env:}" is not a reference tftrain knows'),
    ({"a.yaml": "name: '${env:A,${env:B}}'\n"}, 'a.yaml: name: "${env:A,${env:B}" is not a reference tftrain knows'),
], ids=["self", "cycle", "missing", "list", "empty", "yaml", "yaml-tab", "yaml-alias", "tag", "alias-bomb", "extends-int", "extends-empty",
        "env-unset", "env-unclosed", "env-resolver", "env-no-name", "env-nested"])
def test_bad_composition_is_one_line_exit_2_and_writes_nothing(files, expected, tmp_path, cli, monkeypatch):
    monkeypatch.delenv("TFTRAIN_TEST_UNSET", raising=False)
    write(tmp_path, files)
    monkeypatch.chdir(tmp_path)  # paths in messages are shown as given: relative here
    assert one_line_error(cli, "validate", "a.yaml").startswith(f"error: {expected}")
    assert one_line_error(cli, "run", "a.yaml", "--runs-dir", "runs").startswith(f"error: {expected}")
    assert not (tmp_path / "runs").exists()


def test_a_bad_merged_value_names_the_file_it_came_from(tmp_path, cli, monkeypatch):
    write(tmp_path, {
        "base/data.yaml": "data: {dataset: synthetic_regression, batch_size: 0}\n",
        "base/model.yaml": "extends: data.yaml\nmodel: {type: linear, w_int: 1.0}\n",
        "recipe.yaml": "optimizer: {name: sgd, momentm: 0.9}\n",
        "exp.yaml": "extends: [base/model.yaml, recipe.yaml]\nloss: mse\n",
        "fixed.yaml": "extends: exp.yaml\ndata: {batch_size: 4}\n",
        "fixed2.yaml": "extends: fixed.yaml\nmodel: {type: dense}\n",  # another type: w_int is gone
        "own.yaml": "extends: fixed2.yaml\noptimizer: {name: adam}\ntraining: {epochs: 0}\n",
    })
    monkeypatch.chdir(tmp_path)
    result = cli("validate", "exp.yaml")  # every problem at once, each naming the file it came from
    assert result.exit_code == 2 and result.output.splitlines() == [
        "error: base/model.yaml: unknown key 'w_int' in 'model' — did you mean 'w_init'?; valid keys: type, init_from, w_init, "
        "b_init, output_activation",
        "error: base/data.yaml: data.batch_size: expected a positive integer, got 0",
        "error: recipe.yaml: optimizer: unknown parameter 'momentm' for optimizer 'sgd' — did you mean 'momentum'?; "
        "valid: clipnorm, clipvalue, ema_momentum, ema_overwrite_frequency, global_clipnorm, "
        "gradient_accumulation_steps, learning_rate, loss_scale_factor, momentum, nesterov, use_ema, weight_decay"]
    assert one_line_error(cli, "validate", "fixed2.yaml").startswith(
        "error: recipe.yaml: optimizer: unknown parameter 'momentm' for optimizer 'sgd' — did you mean 'momentum'?")
    # in the file given, or from --set, the message is the same as without composition
    assert one_line_error(cli, "validate", "own.yaml") == "error: training.epochs: expected a positive integer, got 0"
    assert cli("validate", "exp.yaml", "--set", "data.batch_size=-1").output.splitlines()[1] == \
        "error: data.batch_size: expected a positive integer, got -1"


# -- environment variables -------------------------------------------------------------------------

def test_env_variables_with_and_without_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("TFTRAIN_TEST_DIR", "/data/sets")
    monkeypatch.setenv("TFTRAIN_TEST_BASE", "base.yaml")
    monkeypatch.setenv("TFTRAIN_TEST_EMPTY", "")
    monkeypatch.delenv("TFTRAIN_TEST_UNSET", raising=False)
    write(tmp_path, {
        "base.yaml": BASE,
        "exp.yaml": """
            extends: ${env:TFTRAIN_TEST_BASE}
            name: run-${env:TFTRAIN_TEST_UNSET,default}-x${env:TFTRAIN_TEST_EMPTY,unused}
            data: {path: "${env:TFTRAIN_TEST_DIR}/${env:TFTRAIN_TEST_UNSET,mnist,v2}.npz"}
            metrics: ["${env:TFTRAIN_TEST_UNSET,mae}"]
            training: {checkpoint: {monitor: "${env:TFTRAIN_TEST_UNSET,val_mae}"}}
        """,
        "literal.yaml": "extends: base.yaml\ndata: {path: '/a/$${env:NOT_READ}/b'}\n",
    })
    config = load_config(tmp_path / "exp.yaml")
    assert config.data.path == "/data/sets/mnist,v2.npz"  # the default is everything after the first comma
    assert config.name == "run-default-x"  # a variable set to "" is set: the default is not used
    assert config.metrics[0].name == "mae"
    assert config.training.checkpoint.monitor == "val_mae"
    assert config.model.hidden == [64, 32]  # the base came from the environment too
    literal = load_config(tmp_path / "literal.yaml")
    assert literal.data.path == "/a/${env:NOT_READ}/b"  # `$${` writes a literal `${`
    # and the resolved config writes it escaped, so reading it back gives the same value
    (tmp_path / "again.yaml").write_text(literal.to_yaml())
    assert load_config(tmp_path / "again.yaml") == literal


def test_env_values_stay_strings_and_are_checked_like_the_file(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("TFTRAIN_TEST_BATCH", "64")
    write(tmp_path, {"base.yaml": BASE, "exp.yaml": "extends: base.yaml\ndata: {batch_size: '${env:TFTRAIN_TEST_BATCH}'}\n"})
    monkeypatch.chdir(tmp_path)
    assert one_line_error(cli, "validate", "exp.yaml") == \
        'error: data.batch_size: expected a positive integer, got "64"'


# -- show --sources ------------------------------------------------------------------------------------

def test_show_sources_says_where_every_key_came_from(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("TFTRAIN_TEST_DIR", "/data")
    write(tmp_path, {
        "lib/base.yaml": BASE + "deterministic: false\n",
        "lib/paths.yaml": "data: {path: '${env:TFTRAIN_TEST_DIR}/x.npz'}\n",
        "exp.yaml": "extends: [lib/base.yaml, lib/paths.yaml]\nmodel: {hidden: [8]}\nname: exp-1\n",
    })
    monkeypatch.chdir(tmp_path)
    result = cli("show", "exp.yaml", "--sources", "--set", "training.epochs=2")
    assert result.exit_code == 0, result.output
    beside = {}
    for line in result.stdout.splitlines():
        if " # " in line:
            text, source = line.split(" # ", 1)
            beside[text.strip()] = source.strip()
    assert beside["name: exp-1"] == "exp.yaml"
    assert beside["dataset: synthetic_regression"] == "lib/base.yaml"
    assert beside["num_examples: 32"] == "lib/base.yaml"  # set in a mapping the base wrote
    assert beside["x_min: -2.0"] == "default"  # a default of that same mapping
    assert beside["path: /data/x.npz"] == "lib/paths.yaml (${env:TFTRAIN_TEST_DIR})"
    assert beside["hidden: [8]"] == "exp.yaml" and beside["dropout: 0.1"] == "lib/base.yaml"
    assert beside["name: mse"] == "lib/base.yaml"  # `loss: mse` wrote loss.name
    assert beside["deterministic: false"] == "lib/base.yaml"  # written, though equal to the default
    assert beside["epochs: 2"] == "--set"
    assert beside["seed: 0"] == "default" and beside["loop: fit"] == "default"
    # still the resolved config: it loads to the same config as the file
    (tmp_path / "shown.yaml").write_text(result.stdout)
    assert load_config("shown.yaml") == load_config("exp.yaml", ["training.epochs=2"])
    plain = cli("show", "exp.yaml", "--set", "training.epochs=2").stdout
    assert yaml.safe_load(plain) == yaml.safe_load(result.stdout)


def test_show_sources_names_the_default_name(tmp_path, cli):
    write(tmp_path, {"my exp.yaml": BASE})
    result = cli("show", tmp_path / "my exp.yaml", "--sources")
    assert result.exit_code == 0, result.output
    assert "name: my-exp" in result.stdout and "# default: the config file's name" in result.stdout


# -- the run directory ----------------------------------------------------------------------------------

def test_a_run_of_a_composed_config_saves_the_resolved_config(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("TFTRAIN_TEST_NAME", "composed")
    write(tmp_path, {
        "base.yaml": BASE.replace("model: {type: dense, hidden: [64, 32], dropout: 0.1}", "model: {type: linear}"),
        "exp.yaml": "extends: base.yaml\nname: ${env:TFTRAIN_TEST_NAME}\ntraining: {epochs: 1}\n",
    })
    expected = load_config(tmp_path / "exp.yaml")
    result = cli("run", tmp_path / "exp.yaml", "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    text = (run / "config.yaml").read_text()
    assert "extends" not in text and "${" not in text
    assert run.name.startswith("composed-")
    saved = yaml.safe_load(text)
    assert saved["optimizer"] == {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}
    # re-runnable alone: no base file and no environment variable needed
    monkeypatch.delenv("TFTRAIN_TEST_NAME")
    os.remove(tmp_path / "base.yaml")
    saved_config = load_config(run / "config.yaml")
    # `auto` stays auto (issue 32): what it meant is in summary.json's `resolved`, which a resume reads
    assert saved_config.data.in_memory_max_mb == expected.data.in_memory_max_mb == "auto"
    assert saved_config == expected
    assert expected.to_yaml() == text


# -- the recipe library in configs/ ----------------------------------------------------------------

LIBRARY_ENV = {"TFTRAIN_CSV": "train.csv", "TFTRAIN_IMAGES": "photos"}  # what base/csv and base/image_folder read


def test_every_base_recipe_and_experiment_in_configs_validates(cli, tmp_path, monkeypatch):
    from tests.conftest import CONFIGS

    for name, value in LIBRARY_ENV.items():
        monkeypatch.setenv(name, value)
    bases, recipes = sorted((CONFIGS / "base").glob("*.yaml")), sorted((CONFIGS / "recipes").glob("*.yaml"))
    experiments = sorted((CONFIGS / "experiments").glob("*.yaml"))
    assert len(bases) >= 4 and len(recipes) >= 4 and len(experiments) >= 3
    for path in [*bases, *experiments]:
        result = cli("validate", path)
        assert result.exit_code == 0, (path, result.output)
    for experiment in experiments:
        assert "extends" in yaml.safe_load(experiment.read_text())
    # every recipe fits on every base
    for base in bases:
        for recipe in recipes:
            combined = tmp_path / f"{base.stem}-{recipe.stem}.yaml"
            combined.write_text(yaml.safe_dump({"extends": [str(base), str(recipe)]}))
            config = load_config(combined)
            assert config.data.dataset == yaml.safe_load(base.read_text())["data"]["dataset"]
