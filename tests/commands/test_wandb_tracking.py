"""Issue 32, item 9: `tracking: {wandb: {mode: offline, project: P}}` logs the run to Weights &
Biases beside MLflow: its config, metrics per epoch, status and the final model as an artifact.
Offline, everything is on disk under the run directory: the test reads W&B's own run file (a
LevelDB-style log of protobuf records, what `wandb sync` uploads) with W&B's record classes."""

from __future__ import annotations

import glob
import json
import struct
from pathlib import Path

import pytest

from tests.kit import TINY, wait_for

pytest.importorskip("wandb")


@pytest.fixture(autouse=True)
def _wandb_home(tmp_path, monkeypatch):
    """W&B's own folders (settings, artifact staging, cache) in the test's, never the user's."""
    for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")  # belt and braces: the config says offline too


def records(path: Path):
    """The protobuf records of a .wandb file (LevelDB log format: 32 KiB blocks of chunks, each
    with a 7-byte header: CRC, length, type full/first/middle/last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, parts = 32768, 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        parts, pos = parts + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a whole record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


def finished_records(path: Path):
    """The file's records once W&B has written its last one (`exit`), else None. W&B's service
    process writes the file on its own and may still be closing it when the run has returned
    (seen once under load: no `run` record yet)."""
    from google.protobuf.message import DecodeError

    if path.read_bytes()[:4] != b":W&B":  # not even its header yet
        return None
    try:
        found = list(records(path))
    except DecodeError:  # a record still being written
        return None
    return found if any(r.WhichOneof("record_type") == "exit" for r in found) else None


def _key(item) -> str:
    """An item's key (W&B writes it as `key` or as `nested_key` parts)."""
    return item.key or "/".join(item.nested_key)


def test_an_offline_run_logs_config_metrics_status_and_model(cli, write_config, tmp_path):
    config = {**TINY, "training": {**TINY["training"], "epochs": 2},
              "tracking": {"wandb": {"mode": "offline", "project": "tiny-project", "tags": ["test"]}}}
    result = cli("run", write_config(config), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip())
    recorded = json.loads((run / "tracking.json").read_text())["wandb"]
    assert recorded["project"] == "tiny-project" and recorded["mode"] == "offline"
    (log,) = glob.glob(str(run / "wandb" / f"offline-run-*-{recorded['id']}" / f"run-{recorded['id']}.wandb"))
    found = wait_for(lambda: finished_records(Path(log)), "W&B's exit record in the run's file", timeout=60)
    (started,) = [r.run for r in found if r.WhichOneof("record_type") == "run"]
    assert started.project == "tiny-project" and started.display_name == run.name and list(started.tags) == ["test"]
    logged_config = {_key(item): json.loads(item.value_json) for item in started.config.update}
    assert logged_config["training"]["epochs"] == 2 and logged_config["model"]["type"] == "dense"
    history = [{_key(i): json.loads(i.value_json) for i in r.history.item} for r in found
               if r.WhichOneof("record_type") == "history"]
    rows = (run / "history.csv").read_text().splitlines()
    values = [dict(zip(rows[0].split(","), r.split(","))) for r in rows[1:]]
    assert [h["_step"] for h in history] == [1, 2]
    for logged, row in zip(history, values, strict=True):
        for name in ("loss", "val_loss", "accuracy", "val_accuracy", "lr"):
            assert logged[name] == pytest.approx(float(row[name]), rel=1e-6), name
    (artifact,) = [r.artifact for r in found if r.WhichOneof("record_type") == "artifact"]
    assert artifact.type == "model" and artifact.name == f"{run.name}-model"
    assert [e.path for e in artifact.manifest.contents] == ["model.keras"]
    status = [json.loads(i.value_json) for r in found if r.WhichOneof("record_type") == "summary"
              for i in r.summary.update if _key(i) == "tftrain.status"]
    assert status == ["completed"] and "header" in {r.WhichOneof("record_type") for r in found}


def test_wandb_validates_its_keys(cli, write_config):
    result = cli("validate", write_config({**TINY, "tracking": {"wandb": {"mode": "ofline"}}}))
    assert result.exit_code == 2 and "tracking.wandb.mode" in result.stderr and "offline" in result.stderr
