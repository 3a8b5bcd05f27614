"""keras-hub presets as tftrain reads them: where a preset is, what it holds, what it can do.

TF-free (`tftrain validate` runs it): a preset is a folder that keras-hub's `save_to_preset`
wrote (config.json naming a keras-hub backbone class, tokenizer.json for text models,
image_converter.json for image models), or a `kaggle://` / `hf://` handle that keras-hub
downloads into its own cache. With TFTRAIN_OFFLINE=1 nothing is downloaded: a handle is read
from the folder `offline_folder(handle)` names, and when that folder is empty the message says
to fill it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tftrain.errors import ConfigError

HANDLE = re.compile(r"^(kaggle|hf)://(\S+)$")
# What keras-hub writes beside config.json, by the task that needs it.
TASK_FILES = {"text_classifier": "tokenizer.json", "image_classifier": "image_converter.json"}
MAX_CONFIG_BYTES = 4 * 2**20  # a backbone's config.json is a few kilobytes
# tftrain.data.base.OFFLINE_ENV, read here without NumPy (validate imports neither); a test holds them equal.
OFFLINE_ENV = "TFTRAIN_OFFLINE"


def offline() -> bool:
    """True when nothing may be downloaded (TFTRAIN_OFFLINE=1), as tftrain.data.base.offline."""
    return os.environ.get(OFFLINE_ENV, "").lower() in ("1", "true", "yes")


def is_handle(preset: str) -> bool:
    """A kaggle:// or hf:// handle (downloaded by keras-hub), not a folder."""
    return HANDLE.match(preset) is not None


def offline_folder(handle: str) -> Path:
    """Where an offline machine reads the preset `handle` from: $KERAS_HOME/presets/<handle's path>
    (~/.keras/presets/... by default), next to Keras's own dataset and model caches."""
    found = HANDLE.match(handle)
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "presets" / found.group(1) / found.group(2).strip("/")


def local_folder(preset: str, offline: bool) -> Path | None:
    """The folder keras-hub loads `preset` from: the folder itself, a handle's offline folder
    (offline), or None where keras-hub downloads the handle into its cache."""
    if not is_handle(preset):
        return Path(preset).expanduser()
    return offline_folder(preset) if offline else None


def read_backbone_config(folder: Path) -> dict:
    """The preset's config.json (a keras-hub backbone); ValueError, in words, for anything else."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder; expected a keras-hub preset folder (config.json, "
                         "model.weights.h5, tokenizer.json, ... as save_to_preset writes them) or a "
                         "kaggle:// or hf:// handle")
    path = folder / "config.json"
    if not path.is_file():
        raise ValueError(f"{folder}: not a keras-hub preset: it has no config.json (save_to_preset writes one)")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError(f"{path}: {path.stat().st_size} bytes, too large for a backbone's config")
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc.__class__.__name__})") from None
    module = config.get("module") if isinstance(config, dict) else None
    if not isinstance(module, str) or module.split(".")[0] != "keras_hub":
        raise ValueError(f"{folder}: not a keras-hub preset: its config.json names "
                         f"{module or 'no module'!s}, expected a keras_hub backbone class")
    return config


def check_task(folder: Path, task: str, config: dict) -> None:
    """The preset holds what `task` needs (a tokenizer for text, an image converter for images)."""
    needed = TASK_FILES[task]
    if (folder / needed).is_file():
        return
    other = next((name for name, file in TASK_FILES.items() if name != task and (folder / file).is_file()), None)
    hint = f" (it has {TASK_FILES[other]}: task: {other}?)" if other else ""
    raise ValueError(f"{folder} ({config.get('class_name')}) cannot do task {task}: it has no {needed}{hint}")


def max_sequence_length(config: dict) -> int | None:
    """The longest input the backbone's position embedding covers (None: not limited)."""
    value = (config.get("config") or {}).get("max_sequence_length")
    return value if isinstance(value, int) else None


def import_keras_hub():
    """keras_hub, or a one-line message saying how to install it."""
    try:
        import keras_hub
    except ImportError:
        raise ConfigError("model.type hub needs keras-hub: pip install 'tftrain[hub]' "
                          "(keras-hub and tensorflow-text)") from None
    return keras_hub
