"""TensorBoard HParams for sweep members and tune trials: each run's tensorboard/ folder gets the
values it was given and how it ended, so `tensorboard --logdir RUNS_DIR` compares the runs in
its HParams tab, every scalar the run logged (epoch_loss, epoch_accuracy, ... of train/ and
validation/) being a metric column there, plus the best value the sweep or study ranked it by.

No experiment summary is written: TensorBoard then builds the experiment from the sessions it
finds, so one RUNS_DIR may hold any number of sweeps and studies side by side. Written without
TensorFlow (the tune process never imports it), with TensorBoard's own protos and record writer.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from tftrain.runs import TENSORBOARD

# tftrain's statuses as TensorBoard's session statuses (STATUS_SUCCESS, _FAILURE, _RUNNING, _UNKNOWN).
_STATUS = {"completed": "STATUS_SUCCESS", "pruned": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE",
           "failed": "STATUS_FAILURE", "interrupted": "STATUS_RUNNING", "killed": "STATUS_RUNNING"}


def hparam_value(value: Any) -> bool | int | float | str:
    """HParams take booleans, numbers and strings; anything else as the YAML the config holds."""
    if isinstance(value, (bool, int, float, str)):
        return value
    from tftrain.spec.tune import yaml_text

    return yaml_text(value)


def write_session(run_dir: str | Path, hparams: dict[str, Any], group: str, status: str,
                  started: float, ended: float | None = None, best: dict[str, float] | None = None) -> Path:
    """One HParams session for the run at `run_dir` (its values, status and `best` metrics, such as
    {"best_val_loss": 0.12}), in an event file of its own in the run's tensorboard/ folder."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb
    from tensorboard.summary.writer.record_writer import RecordWriter

    ended = time.time() if ended is None else ended
    start = summary_v2.hparams_pb({k: hparam_value(v) for k, v in hparams.items()}, trial_id=group,
                                  start_time_secs=started)
    end_info = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(_STATUS.get(status, "STATUS_UNKNOWN")),
                                              end_time_secs=ended)
    end = summary_pb2.Summary()
    end.value.add(tag=metadata.SESSION_END_INFO_TAG, tensor=metadata.NULL_TENSOR,
                  metadata=metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(
                      session_end_info=end_info)))
    folder = Path(run_dir) / TENSORBOARD
    folder.mkdir(parents=True, exist_ok=True)
    # TensorBoard reads every file whose name holds "tfevents"; the suffix keeps this one apart.
    path = folder / f"events.out.tfevents.{int(ended)}.{socket.gethostname()}.{os.getpid()}.hparams"
    events = [event_pb2.Event(wall_time=started, file_version="brain.Event:2"),
              event_pb2.Event(wall_time=started, step=0, summary=start)]
    events += [event_pb2.Event(wall_time=ended, step=0, summary=scalar_pb(tag, float(value)))
               for tag, value in (best or {}).items() if value is not None]
    events.append(event_pb2.Event(wall_time=ended, step=0, summary=end))
    with open(path, "wb") as file:
        writer = RecordWriter(file)
        for event in events:
            writer.write(event.SerializeToString())
        writer.flush()
    return path
