"""Weights & Biases, the other optional experiment tracker (`pip install 'tftrain[wandb]'`), beside
MLflow (tftrain.tracking): one W&B run per tftrain run.

    tracking: {wandb: {mode: offline, project: fashion}}

What a run logs: its config (nested, as config.yaml holds it), every epoch's (or log interval's)
metrics with their step, its status in the run summary, and model.keras as a `model` artifact.
`mode: offline` (the default) writes everything under the run directory (`wandb/offline-run-*`;
`wandb sync RUN_DIR/wandb/offline-run-*` uploads it later), so tracking never needs the network
unless asked. The W&B run's id is kept in tracking.json, so a resumed run continues it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tftrain.spec.schema import Config, WandbTracking

# tftrain's statuses as a process exit code, which W&B shows as finished (0) or failed.
EXIT_CODES = {"completed": 0, "pruned": 0, "interrupted": 1, "diverged": 1, "failed": 1}


def wandb_settings(config: Config) -> WandbTracking | None:
    """The config's W&B settings, or None when it does not track to W&B."""
    return config.tracking.wandb if config.tracking is not None else None


def start(settings: WandbTracking, config: Config, run_id: str | None, run_name: str, folder: Path):
    """Start a W&B run (`run_id` None: W&B names it), or continue run `run_id` (a resumed tftrain
    run); its files go under `folder`."""
    import wandb

    return wandb.init(
        project=settings.project or config.name or "tftrain", entity=settings.entity, name=run_name, id=run_id,
        resume="allow", mode=settings.mode, dir=str(folder), tags=list(settings.tags) or None,
        config=config.model_dump(mode="json", exclude={"tune"}),
        # tftrain draws its own console; W&B's capture of it would only hold progress bars
        settings=wandb.Settings(silent=True, console="off", save_code=False))


def log_model(run: Any, path: Path, run_name: str) -> None:
    """model.keras as a `model` artifact of the run (named after the tftrain run)."""
    import wandb

    artifact = wandb.Artifact(f"{run_name}-model", type="model", metadata={"file": path.name})
    artifact.add_file(str(path))
    run.log_artifact(artifact)


def finish(run: Any, status: str) -> None:
    """Record tftrain's status in the run summary and end the W&B run."""
    run.summary["tftrain.status"] = status
    run.finish(exit_code=EXIT_CODES.get(status, 1))
