"""Typed tables and text folders past `data.in_memory_max_mb` (issue 28, item 5), forced onto the
streaming path with `in_memory_max_mb: 0` on tiny real files.

- a streamed typed table (csv and jsonl) is fitted on its training split in one pass as in
  memory: the same vocabularies and statistics when the training rows are the same; with a
  validation fraction, exactly the rows the held-out fraction leaves, none of the held-out ones;
- it trains, evaluates and predicts raw rows; a text folder streamed is split, fitted and
  batched exactly as in memory;
- kill -9 mid-epoch on a streamed typed table and resume: bit-identical, both loops;
- bad input is still one line naming file, line and column; a series too large says what to do.
"""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.data.test_tables import mixed_config, write_mixed_table
from tests.data.test_text import write_text_folder
from tests.kit import MID_EPOCH_KILLS, STEPS_PER_EPOCH, Child, InProcess, assert_identical, child_env, run_refused
from tftrain.spec.loading import validate

_RNG = random.Random(os.environ.get("TFTRAIN_TEST_SEED"))


def _prepared(raw: dict):
    """(config, data, fitted preprocessing) as a run prepares them."""
    from tftrain.data import load_data
    from tftrain.data.tables.fit import fitted_table

    config = validate(raw)
    data = load_data(config, config.seed)
    return config, data, fitted_table(config, data)


def _streamed(raw: dict) -> dict:
    return {**raw, "data": {**raw["data"], "in_memory_max_mb": 0}}


def test_a_streamed_table_is_fitted_in_one_pass_as_in_memory(tmp_path):
    write_mixed_table(tmp_path / "table.csv")
    raw = mixed_config(tmp_path / "table.csv", "fit")
    raw["data"]["validation"] = "none"  # the same training rows both ways
    raw["data"]["options"]["columns"]["note"] = {"type": "text", "max_tokens": 16, "output_mode": "tf_idf", "ngrams": 2}
    _, memory, in_memory = _prepared(raw)
    _, streamed, from_files = _prepared(_streamed(raw))
    assert not memory.streamed and streamed.streamed
    assert "in_memory_max_mb: 0" in streamed.reason
    for a, b in zip(in_memory.columns, from_files.columns):
        assert (a.name, a.type, a.vocabulary) == (b.name, b.type, b.vocabulary)
        if a.type == "numeric":
            assert (a.mean, a.variance) == pytest.approx((b.mean, b.variance), rel=1e-12)
        assert a.idf == (pytest.approx(b.idf, rel=1e-12) if b.idf is not None else None)
    note = next(c for c in from_files.columns if c.name == "note")
    texts = [line.split(",")[4] for line in (tmp_path / "table.csv").read_text().splitlines()[1:]]
    documents = sum(f" {note.vocabulary[0]} " in f" {t} " for t in texts)  # lower-case words, spaces between
    assert note.idf[0] == pytest.approx(np.log(1 + len(texts) / (1 + documents)), rel=1e-6)  # Keras's formula


def test_a_streamed_validation_fraction_holds_out_rows_the_fit_never_sees(tmp_path):
    from tftrain.data.pipeline.batches import build_pipelines
    from tftrain.data.tables.fit import training_rows

    write_mixed_table(tmp_path / "table.csv")
    config, data, fitted = _prepared(_streamed(mixed_config(tmp_path / "table.csv", "fit")))
    rows = np.concatenate([x.numpy() for x in training_rows(config, data)])
    held = np.concatenate([x.numpy() for x, _ in build_pipelines(data, config, config.seed).validation])
    assert (len(rows), len(held)) == (36, 12)  # round(48 * 0.25) held out, exactly
    every = {tuple(r) for r in np.concatenate([rows, held]).tolist()}
    assert len(every) == 48  # each row once: none both trained on and held out
    sizes = rows[:, 1].astype(float)
    size = next(c for c in fitted.columns if c.name == "size")
    assert (size.mean, size.variance) == pytest.approx((sizes.mean(), sizes.var()), rel=1e-9)
    one_epoch = np.concatenate([x.numpy() for x, _ in build_pipelines(data, config, config.seed).train(0)
                                .take(STEPS_PER_EPOCH)])
    assert sorted(map(tuple, one_epoch.tolist())) == sorted(map(tuple, rows.tolist()))


def test_a_streamed_table_trains_evaluates_and_predicts_raw_rows(cli, write_config, tmp_path):
    write_mixed_table(tmp_path / "table.csv")
    raw = _streamed(mixed_config(tmp_path / "table.csv", "custom"))
    raw["training"] = {"loop": "custom", "epochs": 2}
    result = cli("run", write_config(raw), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.output.strip().splitlines()[-1])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["streamed"]["reason"] == "data.in_memory_max_mb: 0"
    assert summary["data"]["preprocessing"]["columns"]["color"] == {"type": "category", "vocabulary": 3}
    assert summary["data"]["train_examples"] == 36
    evaluated = cli("evaluate", run, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["examples"] == 12
    (tmp_path / "rows.csv").write_text("color,size,weight,zip,note\nred,9.5,,12345,good fine\npurple,11,NA,1,\n")
    predicted = cli("predict", run, tmp_path / "rows.csv", "--json")
    assert predicted.exit_code == 0, predicted.output
    assert len(json.loads(predicted.stdout)["predictions"]) == 2


def test_a_streamed_jsonl_table_is_fitted_as_in_memory_and_trains(cli, write_config, tmp_path):
    rng = np.random.default_rng(3)
    lines = []
    for i in range(40):
        x = float(rng.normal())
        record = {"x": None if i % 9 == 0 else x, "kind": ["a", "b", "c"][i % 3], "y": "up" if x > 0 else "down"}
        lines.append(json.dumps(record) + ("\n\n" if i == 5 else "\n"))  # a blank line, skipped both ways
    (tmp_path / "t.jsonl").write_text("".join(lines))
    raw = {"seed": 1, "data": {"dataset": "jsonl", "path": str(tmp_path / "t.jsonl"), "batch_size": 8,
                               "validation": "none", "options": {"label": "y", "columns": {"x": "numeric",
                                                                                            "kind": "category"}}},
           "model": {"type": "dense", "hidden": [4]}, "loss": "sparse_categorical_crossentropy",
           "training": {"epochs": 1}}
    _, memory, in_memory = _prepared(raw)
    _, streamed, from_files = _prepared(_streamed(raw))
    assert streamed.train_count == memory.train_count == 40 and streamed.class_names == ("down", "up")
    assert [c.vocabulary for c in from_files.columns] == [c.vocabulary for c in in_memory.columns]
    assert from_files.columns[0].mean == pytest.approx(in_memory.columns[0].mean, rel=1e-12)
    result = cli("run", write_config(_streamed(raw)), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_streamed_typed_table_sigkilled_mid_epoch_resumes_bit_identical(tmp_path, loop):
    at = _RNG.choice(MID_EPOCH_KILLS)
    write_mixed_table(tmp_path / "table.csv")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_streamed(mixed_config(tmp_path / "table.csv", loop))))
    env = child_env(tmp_path)
    killed = Child(["run", "--runs-dir", "runs", "c.yaml"], tmp_path, env, paced=True, at=at, signal=signal.SIGKILL)
    base = InProcess(["run", "--runs-dir", "base", "c.yaml"], tmp_path)
    assert killed.wait() == -9, killed
    assert base.exit_code == 0, base
    run = killed.run_dir(tmp_path)
    assert json.loads((run / "summary.json").read_text())["data"]["streamed"]
    resumed = InProcess(["run", "--resume", run], tmp_path)
    assert resumed.exit_code == 0, resumed
    assert any(line.startswith("resuming from epoch ") and not line.endswith(", step 0") for line in resumed.lines)
    assert_identical(run, base.run_dir(tmp_path))


def test_a_streamed_text_folder_is_split_fitted_and_batched_as_in_memory(tmp_path):
    from tftrain.data.pipeline.batches import build_pipelines

    folder = write_text_folder(tmp_path / "texts", per_class=20)
    raw = {"seed": 4, "data": {"dataset": "text_folder", "path": str(folder), "batch_size": 8, "validation": 0.25,
                               "options": {"max_tokens": 40, "output_mode": "int", "sequence_length": 12}},
           "model": {"type": "sequential", "layers": [{"embedding": {"input_dim": 40, "output_dim": 4}},
                                                       "global_average_pooling1d", {"dense": 2}]},
           "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True}, "training": {"epochs": 2}}
    config, memory, in_memory = _prepared(raw)
    _, streamed, from_files = _prepared(_streamed(raw))
    assert streamed.streamed and in_memory == from_files
    batches = [[(x.numpy(), y.numpy()) for x, y in build_pipelines(data, config, config.seed).train(0).take(6)]
               for data in (memory, streamed)]
    for (x, y), (sx, sy) in zip(*batches):  # the same texts (as UTF-8 bytes) in the same order, both epochs
        assert [t.encode() if isinstance(t, str) else t for t in x[:, 0]] == list(sx[:, 0])
        assert (y == sy).all()


def test_a_streamed_text_folder_trains_and_predicts(cli, write_config, tmp_path):
    folder = write_text_folder(tmp_path / "texts", per_class=16)
    raw = {"seed": 0, "data": {"dataset": "text_folder", "path": str(folder), "batch_size": 8, "validation": 0.25,
                               "in_memory_max_mb": 0, "options": {"max_tokens": 40, "output_mode": "multi_hot"}},
           "model": {"type": "dense", "hidden": [4]}, "loss": "sparse_categorical_crossentropy",
           "training": {"epochs": 2}}
    result = cli("run", write_config(raw), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.output.strip().splitlines()[-1])
    assert json.loads((run / "summary.json").read_text())["data"]["streamed"]["files"]["train"]["count"] == 32
    (tmp_path / "a.txt").write_text("a superb film")
    predicted = cli("predict", run, tmp_path / "a.txt", "--json")
    assert predicted.exit_code == 0, predicted.output


BAD = [
    ("a,b,y\n1,x,0\n2.5,z,1\nseven,x,0\n", {}, "{path}: line 4, column 'a': 'seven' is not a number"),
    ('a,b,y\n1,"x\ny",0\n2,z,1\n', {},
     "{path}: line 2: a quoted field spans lines 2-3, which a streamed table cannot read"),
    ("a,b,y\n1,x,0\n2,z,\n", {}, "{path}: line 3, column 'y': empty target value"),
    ("a,b,y\n1,x,0\n2,z\n", {}, "{path}: line 3 has 2 fields; the header has 3"),
    ("a,bb,y\n1,x,0\n", {}, "data.options.columns.b: column 'b' is not in {path} — did you mean 'bb'?"),
    ("a,b,y\n1,caf\xe9,0\n", {}, "{path}: byte 11 (b'\\xe9') is not utf-8-sig text"),
    ("a,b,y\n1,caf\xe9,0\n", {"encoding": "latin-1"},
     "data.options.encoding: a table that streams (data.in_memory_max_mb: 0) is read as UTF-8, not latin-1: convert"),
]


@pytest.mark.parametrize("text, options, message", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_streamed_tables_are_one_line_and_write_nothing(cli, write_config, tmp_path, text, options, message):
    (tmp_path / "t.csv").write_bytes(text.encode("latin-1"))
    raw = {"data": {"dataset": "csv", "path": str(tmp_path / "t.csv"), "validation": "none", "in_memory_max_mb": 0,
                    "options": {"label": "y", "columns": {"a": "numeric", "b": "category"}, **options}},
           "model": {"type": "dense"}, "loss": "sparse_categorical_crossentropy", "training": {"epochs": 1}}
    line = run_refused(cli, tmp_path, write_config(raw))
    assert message.format(path=tmp_path / "t.csv") in line, line


def test_bad_streamed_jsonl_and_text_folders_are_one_line(cli, write_config, tmp_path):
    (tmp_path / "t.jsonl").write_text('{"age": 3, "y": 1}\n{"age": 4, "y": 0}\n')
    jsonl = {"data": {"dataset": "jsonl", "path": str(tmp_path / "t.jsonl"), "validation": "none",
                      "in_memory_max_mb": 0, "options": {"label": "y", "columns": {"agee": "numeric"}}},
             "model": {"type": "dense"}, "loss": "sparse_categorical_crossentropy"}
    line = run_refused(cli, tmp_path, write_config(jsonl))
    assert "data.options.columns: 'agee' is in no record of" in line and "did you mean 'age'?" in line, line
    folder = write_text_folder(tmp_path / "texts", per_class=4)
    (folder / "pos" / "empty.txt").write_text("  \n")
    texts = {"data": {"dataset": "text_folder", "path": str(folder), "validation": "none", "in_memory_max_mb": 0},
             "model": {"type": "dense"}, "loss": "sparse_categorical_crossentropy"}
    assert f"{folder / 'pos' / 'empty.txt'}: an empty text file" in run_refused(cli, tmp_path, write_config(texts))
    texts["data"]["options"] = {"encoding": "latin-1"}
    assert "a text folder that streams (data.in_memory_max_mb: 0) is read as UTF-8, not latin-1: convert" in \
        run_refused(cli, tmp_path, write_config(texts))


def test_a_series_too_large_for_memory_says_what_to_do(cli, write_config, tmp_path):
    (tmp_path / "s.csv").write_text("t,v\n" + "".join(f"{i},{i % 7}\n" for i in range(50)))
    raw = {"data": {"dataset": "timeseries", "path": str(tmp_path / "s.csv"), "in_memory_max_mb": 0, "validation": 0.2,
                    "options": {"target": "v", "time_column": "t", "window": 4}},
           "model": {"type": "dense"}, "loss": "mse"}
    line = run_refused(cli, tmp_path, write_config(raw))
    assert "the windows of a series are held in memory (they do not stream)" in line, line
    assert "raise data.in_memory_max_mb" in line and "a larger data.options.stride" in line, line
