"""Issue 32, item 3: configs that travel. A run's config.yaml (and so a study's best.yaml) keeps
what the user wrote (`auto` for data.in_memory_max_mb and training.cpu_threads); what `auto`
meant on the machine goes to summary.json (`resolved`), and `--resume` uses that."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import yaml

from tests.kit import TINY, AtStep, summary


def test_config_yaml_keeps_auto_and_the_summary_records_what_it_meant(cli, write_config, tmp_path):
    from tftrain.data.base import in_memory_limit_mb

    result = cli("run", write_config(TINY), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip())
    written = yaml.safe_load((run / "config.yaml").read_text())
    assert written["data"]["in_memory_max_mb"] == "auto" and written["training"]["cpu_threads"] == "auto"
    facts = summary(run)
    assert facts["resolved"]["data.in_memory_max_mb"] == in_memory_limit_mb("auto") > 0
    if isinstance(facts["cpu_threads"], int):  # 0 (TensorFlow's default) is not recorded
        assert facts["resolved"]["training.cpu_threads"] == facts["cpu_threads"]
    again = cli("run", run / "config.yaml", "--runs-dir", tmp_path / "again", "-q")  # it reruns as it is
    assert again.exit_code == 0, again.output


def test_resume_uses_what_the_run_resolved_not_this_machine(cli, write_config, tmp_path):
    """A run interrupted on a machine where `auto` meant 0 MiB (stream everything) and 3 threads
    resumes with those values (the config it trains with, shown by -v), not this machine's; its
    config.yaml still says auto."""
    stopped = cli("run", write_config(TINY), "--runs-dir", tmp_path / "runs",
                  callbacks=[AtStep(3, lambda: os.kill(os.getpid(), signal.SIGTERM))])
    assert stopped.exit_code == 143, stopped.output
    (run,) = (tmp_path / "runs").iterdir()
    facts = summary(run)
    facts["resolved"] = {"data.in_memory_max_mb": 0, "training.cpu_threads": 3}  # as the other machine said
    (run / "summary.json").write_text(json.dumps(facts))
    resumed = cli("run", "--resume", run, "-v")
    assert resumed.exit_code == 0, resumed.output
    assert "in_memory_max_mb: 0\n" in resumed.output and "cpu_threads: 3\n" in resumed.output
    written = yaml.safe_load((run / "config.yaml").read_text())
    assert written["data"]["in_memory_max_mb"] == "auto" and written["training"]["cpu_threads"] == "auto"


def test_a_worker_share_of_the_cores_never_reaches_the_config(monkeypatch):
    """sweep/tune --jobs N give each worker its share through TF_NUM_INTRAOP_THREADS, which
    `cpu_threads: auto` follows (and records), instead of --set training.cpu_threads=N."""
    from tftrain.training.performance import resolve_cpu_threads

    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    assert resolve_cpu_threads("auto", 10**12, has_gpu=False) == 1
    assert resolve_cpu_threads(4, 10, has_gpu=False) == 4  # the config's own number still wins
