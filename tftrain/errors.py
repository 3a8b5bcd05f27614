"""Errors that the CLI turns into one-line messages and exit codes (no traceback)."""


class TftrainError(Exception):
    """Base of every error tftrain reports to the user; `exit_code` is what the CLI returns."""

    exit_code = 1
    label = "error"  # the CLI prints `<label>: <message>`


class UserError(TftrainError):
    """Bad input: config, file, name or flag. Exit 2, nothing written."""

    exit_code = 2


class ConfigError(UserError):
    """The YAML or a --set override does not describe a valid run."""


class DataError(UserError):
    """A dataset file is missing, unreadable or of the wrong shape."""


class DataReadError(TftrainError):
    """The data could not be read while training (a corrupt record, an image that does not
    decode): the run is `failed`, its last checkpoint still resumes it (exit 1)."""


class DivergedError(TftrainError):
    """The loss became NaN or infinite."""

    exit_code = 3


class TrainingInterrupted(TftrainError):
    """SIGINT or SIGTERM stopped training after a checkpoint; exit 128 + the signal number
    (130 for SIGINT, 143 for SIGTERM), as a shell reports a process killed by that signal."""

    label = "interrupted"

    def __init__(self, message: str, signum: int, run_dir: str | None = None):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
        self.run_dir = run_dir  # printed on stdout, so `RUN=$(tftrain run c.yaml)` can resume it
